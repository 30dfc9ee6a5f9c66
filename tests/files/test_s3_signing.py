"""Uploads are signed with the SHA-256 baas computes as the bytes arrive, and that hash is the hash of the bytes.

A loopback proxy in front of the S3 server (moto, or MinIO with BAAS_TEST_S3_ENDPOINT) records each request's
`x-amz-content-sha256` beside the SHA-256 of the body it carried, and forwards it unchanged (Host included, so a
real S3 checks the same signature). S3 refuses a payload whose signed hash does not match (MinIO and AWS do; moto
does not check, which is why the proxy compares them here).
"""
import hashlib
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from files_helpers import random_bytes, upload

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class _Recorder:
    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream if "://" in upstream else f"http://{upstream}").netloc
        self.requests: list[dict] = []
        self.lock = threading.Lock()


def _handler(recorder: _Recorder):
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with recorder.lock:
                recorder.requests.append({"method": self.command, "path": self.path,
                                          "declared": self.headers.get("x-amz-content-sha256"),
                                          "actual": hashlib.sha256(body).hexdigest(),
                                          "md5": self.headers.get("Content-MD5"),
                                          "authorization": self.headers.get("Authorization", "")})
            upstream = http.client.HTTPConnection(recorder.upstream, timeout=60)
            try:
                upstream.request(self.command, self.path, body=body or None, headers=dict(self.headers.items()))
                response = upstream.getresponse()
                data = response.read()
            finally:
                upstream.close()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in _HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    return Forward


@pytest.fixture
def recorder(s3_settings):
    if s3_settings.get("secure"):
        pytest.skip("the recording proxy speaks plain HTTP")
    recorder = _Recorder(s3_settings["endpoint"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorder.endpoint = f"127.0.0.1:{server.server_port}"
    yield recorder
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def app(make_app, recorder):
    return make_app({"storage.s3.endpoint": recorder.endpoint})


def _puts_of(recorder: _Recorder, file_id: str) -> list[dict]:
    with recorder.lock:
        return [r for r in recorder.requests if r["method"] == "PUT" and f"/files/{file_id}" in r["path"]]


def test_a_one_request_upload_is_signed_with_the_files_own_sha256(project, recorder):
    data = random_bytes(700_000)
    response = upload(project.server, data)
    assert response.status_code == 201, response.get_json()
    doc = response.get_json()
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    (put,) = _puts_of(recorder, doc["_id"])
    # The hash baas computed is the one S3 was told, and it is the hash of the bytes S3 received.
    assert put["declared"] == put["actual"] == doc["sha256"]
    assert "x-amz-content-sha256" in put["authorization"].lower() and put["md5"] is None
    assert project.server.get(f"/v1/files/{doc['_id']}/content").data == data


def test_a_form_upload_is_signed_with_the_file_parts_sha256(project, recorder):
    import io

    data = random_bytes(200_000)
    response = project.server.post("/v1/files", data={"file": (io.BytesIO(data), "f.bin"), "name": "f.bin"},
                                   content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    doc = response.get_json()
    (put,) = _puts_of(recorder, doc["_id"])
    assert put["declared"] == put["actual"] == doc["sha256"] == hashlib.sha256(data).hexdigest()


def test_parts_of_a_large_upload_carry_their_own_hashes(project, recorder):
    data = random_bytes(9 * 1024 * 1024)  # above the 8 MiB part size: two parts
    response = upload(project.server, data)
    assert response.status_code == 201, response.get_json()
    doc = response.get_json()
    parts = [put for put in _puts_of(recorder, doc["_id"]) if "partNumber=" in put["path"]]
    assert len(parts) == 2
    assert all(put["declared"] == put["actual"] for put in parts)
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    assert project.server.get(f"/v1/files/{doc['_id']}/content").data == data


def test_the_adapter_declares_the_callers_hash_rather_than_hashing_again(s3_settings, recorder):
    """A wrong hash shows whose hash is sent: S3 refuses the PUT (moto does not check and stores it)."""
    import io

    from minio.error import S3Error

    from baas.storage.blobs_s3 import S3BlobStore

    store = S3BlobStore(recorder.endpoint, s3_settings["access_key"], s3_settings["secret_key"],
                        s3_settings["bucket"], secure=False)
    data = random_bytes(50_000)
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    try:
        store.put("signing/wrong.bin", io.BytesIO(data), len(data), "application/octet-stream", sha256=lambda: wrong)
    except S3Error as exc:  # a real S3
        assert exc.code == "XAmzContentSHA256Mismatch"
    finally:
        store.delete("signing/wrong.bin")
    (put,) = [r for r in recorder.requests if r["method"] == "PUT" and r["path"].endswith("/signing/wrong.bin")]
    assert put["declared"] == wrong != put["actual"]
    store.put("signing/none.bin", io.BytesIO(data), len(data), "application/octet-stream")  # no hash given
    (put,) = [r for r in recorder.requests if r["method"] == "PUT" and r["path"].endswith("/signing/none.bin")]
    assert put["declared"] == put["actual"] == hashlib.sha256(data).hexdigest()
    store.delete("signing/none.bin")


def test_over_https_the_sdks_own_md5_is_kept():
    """Over HTTPS minio sends UNSIGNED-PAYLOAD and a Content-MD5 (Object Lock buckets require it): a given hash
    does not replace them. No request is made: the client builds the headers it would send."""
    import base64

    from minio.credentials import Credentials

    from baas.storage.blobs_s3 import _Minio

    client = _Minio("s3.example.com", access_key="a", secret_key="b", secure=True)
    body = b"some bytes"
    headers, _ = client._build_headers("s3.example.com", {"x-amz-content-sha256": "0" * 64}, body,
                                       Credentials("a", "b"))
    assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert headers["Content-MD5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    plain = _Minio("s3.example.com", access_key="a", secret_key="b", secure=False)
    headers, _ = plain._build_headers("s3.example.com", {"x-amz-content-sha256": "0" * 64}, body,
                                      Credentials("a", "b"))
    assert headers["x-amz-content-sha256"] == "0" * 64 and "Content-MD5" not in headers
    assert headers["Content-Length"] == str(len(body))
