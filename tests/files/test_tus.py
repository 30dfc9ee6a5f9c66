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
    later = datetime.now(timezone.utc) + timedelta(hours=25)
    report = files.sweep(later)
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
