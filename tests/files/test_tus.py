"""tus 1.0 with the real tuspy client: creation, checksums, resume after a cut connection, termination, expiry."""
import base64
import hashlib
import io
import socket
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import requests
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from files_helpers import random_bytes, stored_keys

TUS = {"Tus-Resumable": "1.0.0"}


def _after_expiry() -> datetime:
    return datetime.now(timezone.utc) + timedelta(hours=25)  # past the default tus expiry (24 h)


def _tus(live_url, project):
    return tus_client.TusClient(f"{live_url}/v1/files/tus/", headers={"X-API-Key": project.server_key})


def test_tuspy_upload_in_chunks_with_checksums(live_url, project, blobs, files):
    data = random_bytes(6 * 1024 * 1024 + 12345)  # more than one S3 part, and a tail
    uploader = _tus(live_url, project).uploader(file_stream=io.BytesIO(data), chunk_size=2 * 1024 * 1024,
                                                metadata={"filename": "video.bin", "metadata": '{"trip": 1}'},
                                                upload_checksum=True)
    uploader.upload()
    listed = requests.get(f"{live_url}/v1/files", headers={"X-API-Key": project.server_key}).json()["items"]
    assert len(listed) == 1
    doc = listed[0]
    assert doc["name"] == "video.bin" and doc["size"] == len(data) and doc["metadata"] == {"trip": 1}
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    assert files.read_backs == 0  # hashed as the chunks arrived, not by reading the object back
    got = requests.get(f"{live_url}/v1/files/{doc['_id']}/content", headers={"X-API-Key": project.server_key})
    assert got.content == data
    # Nothing but the file itself is left in storage (no tail objects, no part files).
    assert stored_keys(blobs, project.id) == [f"projects/{project.id}/files/{doc['_id']}"]


def _cut_patch(url: str, api_key: str, offset: int, chunk: bytes, announced: int) -> None:
    """Send a PATCH announcing `announced` bytes, send only `chunk`, then drop the connection."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        head = (f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nX-API-Key: {api_key}\r\n"
                f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {announced}\r\n\r\n").encode()
        sock.sendall(head + chunk)


def test_resume_after_a_cut_connection(live_url, project):
    from baas.testing import wait_until

    data = random_bytes(300_000)
    headers = {"X-API-Key": project.server_key, **TUS}
    created = requests.post(f"{live_url}/v1/files/tus/", headers={
        **headers, "Upload-Length": str(len(data)),
        "Upload-Metadata": "filename " + base64.b64encode(b"voice.ogg").decode()})
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    assert created.headers["Tus-Resumable"] == "1.0.0" and created.headers["Upload-Expires"]
    _cut_patch(url, project.server_key, 0, data[:120_000], len(data))

    def offset():
        head = requests.head(url, headers=headers)
        return int(head.headers["Upload-Offset"]) or None

    # The server keeps what arrived before the cut; the client resumes from there.
    assert wait_until(offset, timeout=10, message="the bytes before the cut to be stored") == 120_000
    uploader = tus_client.TusClient(f"{live_url}/v1/files/tus/", headers={"X-API-Key": project.server_key}) \
        .uploader(file_stream=io.BytesIO(data), url=url, chunk_size=100_000)
    assert uploader.offset == 120_000
    uploader.upload()
    file_id = created.headers["Baas-File-Id"]
    got = requests.get(f"{live_url}/v1/files/{file_id}/content", headers={"X-API-Key": project.server_key})
    assert got.status_code == 200 and got.content == data


def test_protocol_errors(live_url, project):
    headers = {"X-API-Key": project.server_key, **TUS}
    base = f"{live_url}/v1/files/tus/"
    options = requests.options(base, headers={"X-API-Key": project.server_key})
    assert options.status_code == 204 and "checksum" in options.headers["Tus-Extension"]
    assert requests.post(base, headers={"X-API-Key": project.server_key, "Upload-Length": "5"}).status_code == 412
    assert requests.post(base, headers={**headers, "Upload-Length": str(10 ** 12)}).status_code == 413
    url = requests.post(base, headers={**headers, "Upload-Length": "10"}).headers["Location"]
    patch = {**headers, "Content-Type": "application/offset+octet-stream"}
    assert requests.patch(url, data=b"abc", headers={**patch, "Upload-Offset": "3"}).status_code == 409
    assert requests.patch(url, data=b"abc", headers={**headers, "Upload-Offset": "0",
                                                     "Content-Type": "text/plain"}).status_code == 415
    bad_sum = "sha1 " + base64.b64encode(hashlib.sha1(b"xyz").digest()).decode()
    mismatch = requests.patch(url, data=b"abc", headers={**patch, "Upload-Offset": "0", "Upload-Checksum": bad_sum})
    assert mismatch.status_code == 460 and mismatch.json()["code"] == 460
    assert requests.head(url, headers=headers).headers["Upload-Offset"] == "0"  # the chunk was discarded
    assert requests.patch(url, data=b"a" * 11, headers={**patch, "Upload-Offset": "0"}).status_code == 413
    # Another project's key cannot see the upload.
    other = requests.head(url, headers={**TUS, "X-API-Key": project.client_key})
    assert other.status_code in (403, 404)


def test_termination(live_url, project, blobs):
    data = random_bytes(50_000)
    uploader = _tus(live_url, project).uploader(file_stream=io.BytesIO(data), chunk_size=20_000)
    uploader.upload(stop_at=20_000)
    headers = {"X-API-Key": project.server_key, **TUS}
    assert requests.delete(uploader.url, headers=headers).status_code == 204
    assert requests.head(uploader.url, headers=headers).status_code == 404
    assert stored_keys(blobs, project.id) == []
    try:
        uploader.upload()
        raise AssertionError("a terminated upload must not take more bytes")
    except TusCommunicationError as exc:
        assert exc.status_code == 404


def test_expired_uploads_are_gone_and_swept(live_url, project, files, blobs):
    uploader = _tus(live_url, project).uploader(file_stream=io.BytesIO(random_bytes(30_000)), chunk_size=10_000)
    uploader.upload(stop_at=10_000)
    report = files.sweep(_after_expiry())
    assert report["entries"] == 1
    assert files.pending.count_documents({"project_id": project.id}) == 0
    assert requests.head(uploader.url, headers={"X-API-Key": project.server_key, **TUS}).status_code == 404
    assert stored_keys(blobs, project.id) == []
    if hasattr(blobs, "client"):
        assert blobs.client._list_multipart_uploads(blobs.bucket, prefix=f"projects/{project.id}/").uploads == []


def test_sha256_of_an_upload_whose_chunks_reached_several_processes(project, files, task_runner):
    """A process that did not see every earlier byte has no running hash: background work reads the object back
    once, and the file is readable meanwhile."""
    data = random_bytes(3 * 1024 * 1024 + 7)
    created = project.server.post("/v1/files/tus/", headers={**TUS, "Upload-Length": str(len(data))})
    assert created.status_code == 201
    url = urlsplit(created.headers["Location"]).path
    offset = 0
    for size in (1024 * 1024, 1024 * 1024, len(data)):
        chunk = data[offset:offset + size]
        files._running_hashes.clear()  # the next PATCH lands on a process that saw none of the earlier ones
        response = project.server.patch(url, data=chunk, headers={
            **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
        assert response.status_code == 204, response.get_json()
        offset += len(chunk)
    file_id = response.headers["Baas-File-Id"]
    meta = project.server.get(f"/v1/files/{file_id}").get_json()
    assert meta["sha256"] is None and meta["sha256_state"] == "pending" and files.read_backs == 0
    assert project.server.get(f"/v1/files/{file_id}/content").data == data
    task_runner.drain()
    meta = project.server.get(f"/v1/files/{file_id}").get_json()
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() and meta["sha256_state"] == "done"
    assert files.read_backs == 1


def test_a_lost_answer_to_the_last_patch_does_not_upload_the_file_twice(live_url, project, files, blobs):
    from baas.testing import wait_until

    data = random_bytes(250_000)
    headers = {"X-API-Key": project.server_key, **TUS}
    created = requests.post(f"{live_url}/v1/files/tus/", headers={**headers, "Upload-Length": str(len(data))})
    assert created.status_code == 201, created.text
    url, file_id = created.headers["Location"], created.headers["Baas-File-Id"]
    first = requests.patch(url, data=data[:100_000], headers={
        **headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert first.status_code == 204 and "Baas-File-Id" not in first.headers
    # The whole last PATCH is sent and the connection dropped before its answer (a phone losing signal).
    _cut_patch(url, project.server_key, 100_000, data[100_000:], len(data) - 100_000)

    def finished():
        head = requests.head(url, headers=headers)
        return head if head.status_code == 200 and head.headers.get("Baas-File-Id") else None

    # HEAD tells the client its upload is complete, and which file it became.
    head = wait_until(finished, timeout=10, message="the last PATCH to finish the upload")
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Baas-File-Id"] == file_id
    # The standard client, resuming from its stored URL, has nothing left to send.
    uploader = _tus(live_url, project).uploader(file_stream=io.BytesIO(data), url=url, chunk_size=100_000)
    assert uploader.offset == len(data)
    uploader.upload()
    listed = requests.get(f"{live_url}/v1/files", headers={"X-API-Key": project.server_key}).json()["items"]
    assert [doc["_id"] for doc in listed] == [file_id]
    assert requests.get(f"{live_url}/v1/files/{file_id}/content", headers=headers).content == data
    # A repeat of the last PATCH adds nothing; an earlier offset or more bytes are refused as for any upload.
    patch = {**headers, "Content-Type": "application/offset+octet-stream"}
    again = requests.patch(url, data=b"", headers={**patch, "Upload-Offset": str(len(data))})
    assert again.status_code == 204 and again.headers["Baas-File-Id"] == file_id
    assert again.headers["Upload-Offset"] == str(len(data))
    stale = requests.patch(url, data=data[100_000:], headers={**patch, "Upload-Offset": "100000"})
    assert stale.status_code == 409 and stale.headers["Upload-Offset"] == str(len(data))
    assert requests.patch(url, data=b"x", headers={**patch, "Upload-Offset": str(len(data))}).status_code == 413
    assert stored_keys(blobs, project.id) == [f"projects/{project.id}/files/{file_id}"]
    # At the upload's expiry the sweep forgets the upload and keeps the file.
    report = files.sweep(_after_expiry())
    assert report["entries"] == 1 and files.pending.count_documents({"project_id": project.id}) == 0
    assert requests.head(url, headers=headers).status_code == 404
    assert requests.get(f"{live_url}/v1/files/{file_id}/content", headers=headers).content == data


def test_terminating_a_finished_upload_keeps_its_file(live_url, project, blobs):
    data = random_bytes(40_000)
    uploader = _tus(live_url, project).uploader(file_stream=io.BytesIO(data), chunk_size=20_000)
    uploader.upload()
    headers = {"X-API-Key": project.server_key, **TUS}
    file_id = requests.head(uploader.url, headers=headers).headers["Baas-File-Id"]
    assert requests.delete(uploader.url, headers=headers).status_code == 204
    assert requests.head(uploader.url, headers=headers).status_code == 404
    assert requests.get(f"{live_url}/v1/files/{file_id}/content", headers=headers).content == data
    assert stored_keys(blobs, project.id) == [f"projects/{project.id}/files/{file_id}"]


def test_a_finished_upload_whose_file_was_deleted_is_swept_without_touching_storage(project, files, blobs,
                                                                                      task_runner):
    data = random_bytes(2 * 1024 * 1024 + 5)
    created = project.server.post("/v1/files/tus/", headers={**TUS, "Upload-Length": str(len(data))})
    url = urlsplit(created.headers["Location"]).path
    half = len(data) // 2
    for offset, chunk in ((0, data[:half]), (half, data[half:])):
        files._running_hashes.clear()  # no running hash: the file is recorded with its sha256 still to compute
        response = project.server.patch(url, data=chunk, headers={
            **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
        assert response.status_code == 204, response.get_json()
    file_id = response.headers["Baas-File-Id"]
    assert project.server.delete(f"/v1/files/{file_id}").status_code == 204
    # The hash queued at completion has no file left to hash: it ends instead of waiting for the upload's entry.
    task_runner.drain()
    assert files.tasks.count_documents({"project_id": project.id}) == 0
    assert files.read_backs == 0
    report = files.sweep(_after_expiry())
    assert report["entries"] == 1 and files.pending.count_documents({"project_id": project.id}) == 0
    assert stored_keys(blobs, project.id) == []


def test_deleting_a_project_with_finished_and_unfinished_uploads(admin, live_url, project, files, blobs):
    done = _tus(live_url, project).uploader(file_stream=io.BytesIO(random_bytes(30_000)), chunk_size=10_000)
    done.upload()
    half = _tus(live_url, project).uploader(file_stream=io.BytesIO(random_bytes(30_000)), chunk_size=10_000)
    half.upload(stop_at=10_000)
    assert files.pending.count_documents({"project_id": project.id, "kind": "tus"}) == 2
    assert admin.delete(f"/admin/v1/projects/{project.id}", json={"confirm": project.id}).status_code == 204
    assert files.pending.count_documents({"project_id": project.id}) == 0
    assert stored_keys(blobs, project.id) == []
    if hasattr(blobs, "client"):
        assert blobs.client._list_multipart_uploads(blobs.bucket, prefix=f"projects/{project.id}/").uploads == []


def test_an_empty_file_is_a_file_as_soon_as_its_upload_is_created(live_url, project, blobs):
    """tus-js-client sends no PATCH for an empty file: it calls the upload done once the creation answers."""
    headers = {"X-API-Key": project.server_key, **TUS}
    created = requests.post(f"{live_url}/v1/files/tus/", headers={
        **headers, "Upload-Length": "0", "Upload-Metadata": "filename " + base64.b64encode(b"empty.txt").decode()})
    assert created.status_code == 201, created.text
    file_id = created.headers["Baas-File-Id"]
    assert created.headers["Upload-Offset"] == "0"
    meta = requests.get(f"{live_url}/v1/files/{file_id}", headers=headers)
    assert meta.status_code == 200, meta.text
    assert meta.json()["size"] == 0 and meta.json()["name"] == "empty.txt"
    assert meta.json()["sha256"] == hashlib.sha256(b"").hexdigest()
    got = requests.get(f"{live_url}/v1/files/{file_id}/content", headers=headers)
    assert got.status_code == 200 and got.content == b"" and got.headers["Content-Length"] == "0"
    head = requests.head(created.headers["Location"], headers=headers)
    assert head.status_code == 200 and head.headers["Baas-File-Id"] == file_id
    assert stored_keys(blobs, project.id) == [f"projects/{project.id}/files/{file_id}"]


def test_parallel_uploads_are_refused_before_any_part_becomes_a_file(live_url, project, files, blobs):
    """tus-js-client's parallelUploads sends `Upload-Concat: partial` without asking which extensions exist."""
    headers = {"X-API-Key": project.server_key, **TUS}
    for concat in ("partial", "final;/v1/files/tus/a /v1/files/tus/b"):
        refused = requests.post(f"{live_url}/v1/files/tus/", headers={
            **headers, "Upload-Length": "10", "Upload-Concat": concat})
        assert refused.status_code == 400 and refused.json()["code"] == 400
        assert "Upload-Concat" in refused.json()["errors"] and "parallel" in refused.json()["message"]
    assert files.pending.count_documents({"project_id": project.id}) == 0
    assert requests.get(f"{live_url}/v1/files", headers=headers).json()["items"] == []
    assert stored_keys(blobs, project.id) == []


def test_patch_and_delete_sent_as_post_with_a_method_override(live_url, project):
    """tus 1.0 core: X-HTTP-Method-Override names the method. tus-java-client on a JVM sends every PATCH this way
    (HttpURLConnection refuses PATCH), with a chunked body."""
    data = random_bytes(150_000)
    headers = {"X-API-Key": project.server_key, **TUS}
    created = requests.post(f"{live_url}/v1/files/tus/", headers={**headers, "Upload-Length": str(len(data))})
    url, file_id = created.headers["Location"], created.headers["Baas-File-Id"]
    patch = {**headers, "X-HTTP-Method-Override": "PATCH", "Content-Type": "application/offset+octet-stream"}
    first = requests.post(url, data=iter([data[:50_000], data[50_000:100_000]]),
                          headers={**patch, "Upload-Offset": "0"})
    assert first.status_code == 204, first.text
    assert first.headers["Upload-Offset"] == "100000" and "Baas-File-Id" not in first.headers
    stale = requests.post(url, data=data[:10], headers={**patch, "Upload-Offset": "0"})
    assert stale.status_code == 409 and stale.headers["Upload-Offset"] == "100000"
    last = requests.post(url, data=data[100_000:], headers={**patch, "Upload-Offset": "100000"})
    assert last.status_code == 204 and last.headers["Baas-File-Id"] == file_id
    assert requests.get(f"{live_url}/v1/files/{file_id}/content", headers=headers).content == data
    # A POST naming no method it can stand for changes nothing.
    for override in (None, "GET", "PUT"):
        extra = {"X-HTTP-Method-Override": override} if override else {}
        refused = requests.post(url, data=b"x", headers={**headers, **extra, "Upload-Offset": "0",
                                                         "Content-Type": "application/offset+octet-stream"})
        assert refused.status_code == 405 and refused.json()["code"] == 405
        assert "PATCH" in refused.headers["Allow"]
    # DELETE the same way: terminate an unfinished upload.
    other = requests.post(f"{live_url}/v1/files/tus/", headers={**headers, "Upload-Length": "10"}).headers["Location"]
    gone = requests.post(other, headers={**headers, "X-HTTP-Method-Override": "delete"})
    assert gone.status_code == 204 and requests.head(other, headers=headers).status_code == 404
