"""The blob store contract, held by both adapters: S3BlobStore against the S3 server, LocalBlobStore on disk."""
from __future__ import annotations

import hashlib
import io
import os
import secrets

import pytest
import requests

from baas.storage.blobs import BlobNotFound
from baas.storage.blobs_local import LocalBlobStore
from baas.storage.blobs_s3 import S3BlobStore
from baas.storage.embedded import free_port


def s3_store(s3_settings, bucket: str | None = None) -> S3BlobStore:
    return S3BlobStore(s3_settings["endpoint"], s3_settings["access_key"], s3_settings["secret_key"],
                       bucket or "blobs-" + secrets.token_hex(4), s3_settings["secure"], timeout_seconds=5)


@pytest.fixture(params=["s3", "local"])
def store(request, tmp_path):
    if request.param == "s3":
        return s3_store(request.getfixturevalue("s3_settings"))
    return LocalBlobStore(tmp_path / "files")


@pytest.fixture
def local(tmp_path):
    return LocalBlobStore(tmp_path / "files")


def put_bytes(store, key, data: bytes, content_type="application/octet-stream", metadata=None):
    return store.put(key, io.BytesIO(data), len(data), content_type, metadata)


def read(store, key, offset=0, length=None) -> bytes:
    return b"".join(store.open(key, offset, length))


def test_put_stat_and_read_back(store):
    data = os.urandom(300_000)   # more than one read chunk
    info = put_bytes(store, "projects/p-one/files/photo.jpg", data, "image/jpeg", {"owner": "u1"})
    assert info.key == "projects/p-one/files/photo.jpg" and info.size == len(data)
    if isinstance(store, S3BlobStore):
        assert info.etag == hashlib.md5(data).hexdigest()  # S3's ETag of a single PUT
    else:  # on disk an opaque tag of this write: no second hash of the bytes
        assert isinstance(info.etag, str) and len(info.etag) == 32
    stat = store.stat("projects/p-one/files/photo.jpg")
    assert (stat.size, stat.content_type, stat.etag) == (len(data), "image/jpeg", info.etag)
    assert stat.metadata.get("owner") == "u1"
    assert stat.modified is not None
    assert read(store, "projects/p-one/files/photo.jpg") == data


def test_ranged_reads(store):
    data = bytes(range(256)) * 4
    put_bytes(store, "r/data.bin", data)
    assert read(store, "r/data.bin", 10, 5) == data[10:15]
    assert read(store, "r/data.bin", 1000) == data[1000:]
    assert read(store, "r/data.bin", 0, 1) == data[:1]
    assert read(store, "r/data.bin", 1020, 100) == data[1020:]


def test_overwrite_replaces_content(store):
    first = put_bytes(store, "o/x.txt", b"first version", "text/plain")
    second = put_bytes(store, "o/x.txt", b"second", "text/markdown")
    assert first.etag and second.etag and first.etag != second.etag
    assert store.stat("o/x.txt").etag == second.etag
    assert read(store, "o/x.txt") == b"second"
    assert store.stat("o/x.txt").content_type == "text/markdown"
    assert [b.key for b in store.list("o/")] == ["o/x.txt"]


def test_unknown_length_upload(store):
    data = os.urandom(70_000)
    info = store.put("u/stream.bin", io.BytesIO(data), -1, "application/octet-stream")
    assert info.size == len(data)
    assert read(store, "u/stream.bin") == data


def test_copy_makes_an_independent_object(store):
    put_bytes(store, "p/staging/a", b"first bytes", "image/png")
    copied = store.copy("p/staging/a", "p/files/a")
    assert copied.key == "p/files/a" and copied.size == len(b"first bytes")
    put_bytes(store, "p/staging/a", b"other")  # the source changes: the copy does not
    assert read(store, "p/files/a") == b"first bytes"
    with pytest.raises(BlobNotFound):
        store.copy("p/staging/missing", "p/files/b")
    with pytest.raises(ValueError):
        store.copy("p/staging/a", "p/../escape")


def test_empty_blob(store):
    put_bytes(store, "e/empty", b"")
    assert store.stat("e/empty").size == 0
    assert read(store, "e/empty") == b""


def test_missing_blob_raises_blob_not_found(store):
    with pytest.raises(BlobNotFound):
        store.stat("nope/missing.txt")
    with pytest.raises(BlobNotFound):
        store.open("nope/missing.txt")
    store.delete("nope/missing.txt")   # deleting nothing is not an error
    assert list(store.list("nope/")) == []


def test_list_is_by_prefix_and_recursive(store):
    for key in ("projects/a-one/x.txt", "projects/a-one/deep/y.txt", "projects/a-two/z.txt", "projects/a-one-b/w"):
        put_bytes(store, key, key.encode())
    listed = sorted(b.key for b in store.list("projects/a-one/"))
    assert listed == ["projects/a-one/deep/y.txt", "projects/a-one/x.txt"]   # not a-one-b: prefixes end with '/'
    sizes = {b.key: b.size for b in store.list("projects/a-one/")}
    assert sizes["projects/a-one/x.txt"] == len(b"projects/a-one/x.txt")
    assert list(store.list("projects/none/")) == []


def test_delete_and_delete_prefix(store):
    for key in ("projects/d-one/1", "projects/d-one/sub/2", "projects/d-one/sub/3", "projects/d-two/keep"):
        put_bytes(store, key, b"x")
    store.delete("projects/d-one/1")
    with pytest.raises(BlobNotFound):
        store.stat("projects/d-one/1")
    assert store.delete_prefix("projects/d-one/") == 2
    assert list(store.list("projects/d-one/")) == []
    assert [b.key for b in store.list("projects/d-two/")] == ["projects/d-two/keep"]
    assert store.delete_prefix("projects/d-one/") == 0
    with pytest.raises(ValueError):
        store.delete_prefix("projects/d-two")       # a prefix must end with '/'


@pytest.mark.parametrize("key", ["../x", "a/../../b", "a/../b", "/abs", "/etc/passwd", "a//b", "a/./b", "./a",
                                 "a/", "", "nul\x00byte", "back\\slash", "..\\x", "tab\there", "new\nline",
                                 "a" * 1100, "x/" + "b" * 256])
def test_unsafe_keys_are_rejected_everywhere(store, key):
    with pytest.raises(ValueError):
        put_bytes(store, key, b"x")
    for call in (lambda: store.stat(key), lambda: store.open(key), lambda: store.delete(key),
                 lambda: store.presigned_get_url(key, 60)):
        with pytest.raises(ValueError):
            call()


@pytest.mark.parametrize("prefix", ["../", "a/../", "/abs/", "nul\x00/"])
def test_unsafe_prefixes_are_rejected(store, prefix):
    with pytest.raises(ValueError):
        store.delete_prefix(prefix)
    with pytest.raises(ValueError):
        list(store.list(prefix))


@pytest.mark.parametrize("declared, sent", [(10, b"short"), (3, b"longer than declared")])
def test_upload_with_wrong_length_fails_and_leaves_nothing(store, declared, sent):
    with pytest.raises(ValueError, match="expected"):
        store.put("w/bad.bin", io.BytesIO(sent), declared, "application/octet-stream")
    with pytest.raises(BlobNotFound):
        store.stat("w/bad.bin")
    assert list(store.list("w/")) == []


def test_failed_overwrite_keeps_the_old_blob(store):
    put_bytes(store, "k/keep.txt", b"original", "text/plain")
    with pytest.raises(ValueError):
        store.put("k/keep.txt", io.BytesIO(b"much too long"), 4, "text/plain")
    assert read(store, "k/keep.txt") == b"original"
    assert store.stat("k/keep.txt").content_type == "text/plain"


def test_ping(store):
    store.ping()


# --- S3 only ---------------------------------------------------------------------------------------------------

def test_s3_presigned_get_is_fetchable(s3_settings):
    store = s3_store(s3_settings)
    data = b"presigned content " + os.urandom(32)
    put_bytes(store, "projects/p-one/shared.bin", data, "application/octet-stream")
    url = store.presigned_get_url("projects/p-one/shared.bin", 120)
    assert url.startswith("http://") and "X-Amz-Signature=" in url
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content == data
    ranged = requests.get(url, headers={"Range": "bytes=0-8"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == data[:9]


def test_s3_presigned_put_uploads(s3_settings):
    store = s3_store(s3_settings)
    store.ping()   # creates the bucket
    url = store.presigned_put_url("projects/p-one/upload.txt", 120)
    response = requests.put(url, data=b"uploaded directly", headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 200
    assert read(store, "projects/p-one/upload.txt") == b"uploaded directly"


def test_s3_creates_its_bucket_on_first_use_and_shares_it(s3_settings):
    bucket = "lazy-" + secrets.token_hex(4)
    first = s3_store(s3_settings, bucket)
    assert not first.client.bucket_exists(bucket)          # building the adapter does no I/O
    assert list(first.list("x/")) == []                    # listing a missing bucket is empty, not an error
    assert first.delete_prefix("x/") == 0
    put_bytes(first, "x/one", b"1")
    assert first.client.bucket_exists(bucket)
    second = s3_store(s3_settings, bucket)
    assert read(second, "x/one") == b"1"


def test_s3_ping_names_the_unreachable_endpoint():
    closed = free_port()
    store = S3BlobStore(f"127.0.0.1:{closed}", "a", "b", "bucket", secure=False, timeout_seconds=1)
    with pytest.raises(ConnectionError) as info:
        store.ping()
    assert f"S3 storage at 127.0.0.1:{closed}" in str(info.value) and "unreachable" in str(info.value)


def test_s3_endpoint_may_be_given_as_url(s3_settings):
    store = S3BlobStore("http://" + s3_settings["endpoint"], s3_settings["access_key"], s3_settings["secret_key"],
                        "url-" + secrets.token_hex(4), secure=True)   # the URL's scheme wins over `secure`
    put_bytes(store, "a/b", b"ok")
    assert read(store, "a/b") == b"ok"


# --- local only ------------------------------------------------------------------------------------------------

def test_local_files_stay_inside_the_root(tmp_path, local):
    put_bytes(local, "projects/p-one/a.txt", b"inside")
    assert (tmp_path / "files" / "projects" / "p-one" / "a.txt").read_bytes() == b"inside"
    assert not (tmp_path / "a.txt").exists()


def test_local_refuses_symlinks_out_of_the_root(tmp_path, local):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (tmp_path / "files").mkdir(exist_ok=True)
    os.symlink(outside, tmp_path / "files" / "link")
    with pytest.raises(ValueError):
        local.stat("link/secret.txt")
    with pytest.raises(ValueError):
        put_bytes(local, "link/new.txt", b"x")
    assert not (outside / "new.txt").exists()


def test_local_reserved_names_are_rejected(local):
    for key in ("a/b.baasmeta", "a/.upload-x", ".upload-ping"):
        with pytest.raises(ValueError):
            put_bytes(local, key, b"x")


def test_local_failed_upload_leaves_no_files(tmp_path, local):
    with pytest.raises(ValueError):
        local.put("w/bad.bin", io.BytesIO(b"abc"), 10, "application/octet-stream")
    assert [p for p in (tmp_path / "files").rglob("*") if p.is_file()] == []


def test_local_has_no_presigned_urls(local):
    put_bytes(local, "a/b", b"x")
    assert local.presigned_get_url("a/b", 60) is None
    assert local.presigned_put_url("a/b", 60) is None


def test_local_ping_reports_an_unwritable_root(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    store = LocalBlobStore(blocker / "files")
    with pytest.raises(ConnectionError, match="not writable"):
        store.ping()
