import hashlib

import requests

from files_helpers import png_bytes, random_bytes, stored_keys, upload


def test_raw_upload_then_download(project):
    data = random_bytes(300_000)
    response = upload(project.server, data, name="notes.bin")
    assert response.status_code == 201, response.get_json()
    doc = response.get_json()
    assert doc["size"] == len(data) and doc["sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["name"] == "notes.bin" and doc["public"] is False and "key" not in doc
    assert response.headers["Location"].endswith(f"/v1/files/{doc['_id']}")
    got = project.server.get(f"/v1/files/{doc['_id']}/content")
    assert got.status_code == 200 and got.data == data
    assert got.headers["Content-Length"] == str(len(data))
    assert got.headers["ETag"] == f'"{doc["sha256"]}"'
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.headers["Content-Security-Policy"] == "sandbox"
    meta = project.server.get(f"/v1/files/{doc['_id']}")
    assert meta.status_code == 200 and meta.get_json()["sha256"] == doc["sha256"]


def test_multipart_upload_with_fields_before_and_after_the_file(project):
    image = png_bytes()
    boundary = "XyZ123"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{{\"album\": \"trip\"}}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../etc/ph\u00f6to.png\"\r\n"
            f"Content-Type: text/plain\r\n\r\n").encode() + image + \
        (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"public\"\r\n\r\ntrue\r\n"
         f"--{boundary}--\r\n").encode()
    response = project.server.post("/v1/files", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 201, response.get_json()
    doc = response.get_json()
    # The declared text/plain loses against the PNG bytes; the path parts of the name are gone.
    assert doc["content_type"] == "image/png" and doc["name"] == "ph\u00f6to.png"
    assert doc["metadata"] == {"album": "trip"} and doc["public"] is True and doc["size"] == len(image)
    got = project.client.get(f"/v1/files/{doc['_id']}/content")  # public: the client key alone reads it
    assert got.status_code == 200 and got.data == image and got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"].startswith("inline;")


def test_multipart_without_a_file_part_is_400(project):
    body = b"--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--b--\r\n"
    response = project.server.post("/v1/files", data=body, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 400 and response.get_json()["errors"] == {"file": ["Missing."]}


def test_too_big_with_content_length_leaves_nothing(project, blobs, files):
    assert project.server.patch("/v1/files/settings", json={"max_file_bytes": 100_000}).status_code == 200
    response = upload(project.server, random_bytes(100_001))
    assert response.status_code == 413 and response.get_json()["code"] == 413
    assert stored_keys(blobs, project.id) == []
    assert files.pending.count_documents({"project_id": project.id}) == 0
    assert project.server.get("/v1/files").get_json()["items"] == []


def test_too_big_chunked_without_length_leaves_nothing(project, blobs, files):
    import io

    assert project.server.patch("/v1/files/settings", json={"max_file_bytes": 6_000_000}).status_code == 200
    data = random_bytes(7_000_000)  # past S3's multipart part size: a multipart upload is begun and aborted
    response = project.server.post("/v1/files", input_stream=io.BytesIO(data), content_type="image/png",
                                   headers={"Transfer-Encoding": "chunked"},
                                   environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413, response.get_json()
    assert stored_keys(blobs, project.id) == []
    assert files.pending.count_documents({"project_id": project.id}) == 0
    if hasattr(blobs, "client"):  # no half-written multipart upload stays on S3
        assert blobs.client._list_multipart_uploads(blobs.bucket, prefix=f"projects/{project.id}/").uploads == []
    small = project.server.post("/v1/files", input_stream=io.BytesIO(data[:5000]), content_type="image/png",
                                headers={"Transfer-Encoding": "chunked"},
                                environ_overrides={"wsgi.input_terminated": True})
    assert small.status_code == 201 and small.get_json()["size"] == 5000


def test_lying_content_type_and_refused_executable(project):
    elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200
    response = upload(project.server, elf, name="cute.jpg", content_type="image/jpeg")
    assert response.status_code == 415, response.get_json()
    html = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
    doc = upload(project.server, html, name="x.png", content_type="image/png").get_json()
    assert doc["content_type"] == "text/html"
    got = project.server.get(f"/v1/files/{doc['_id']}/content")
    assert got.headers["Content-Type"].startswith("text/html")
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.headers["X-Content-Type-Options"] == "nosniff" and got.headers["Content-Security-Policy"] == "sandbox"
    csv = upload(project.server, b"a,b\n1,2\n", name="t.csv", content_type="text/csv").get_json()
    assert csv["content_type"] == "text/csv"


def test_allowed_types_of_a_project(project):
    assert project.server.patch("/v1/files/settings", json={"allowed_types": ["image/*"]}).status_code == 200
    assert upload(project.server, b"just text").status_code == 415
    assert upload(project.server, png_bytes(), content_type="application/octet-stream").status_code == 201


def test_names_are_sanitised(project):
    nasty = "..\\..\\evil\u202egnp.exe\x00\x07\r\n"
    doc = upload(project.server, b"x", name=nasty).get_json()
    assert doc["name"] == "evilgnp.exe"
    long = upload(project.server, b"x", name="a" * 400 + ".txt").get_json()["name"]
    assert len(long) == 255 and long.endswith(".txt")
    assert upload(project.server, b"x", name="/../").get_json()["name"] == "file"
    quoted = upload(project.server, b"x", name='r\u00e9sum\u00e9 "final";.pdf').get_json()
    got = project.server.get(f"/v1/files/{quoted['_id']}/content")
    assert got.headers["Content-Disposition"] == \
        "inline; filename=\"r_sum_ _final__.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B.pdf"


def test_patch_and_delete_metadata_and_object(project, blobs):
    doc = upload(project.server, b"hello").get_json()
    changed = project.server.patch(f"/v1/files/{doc['_id']}", json={"name": "b.txt", "metadata": {"k": 1}},
                                   headers={"If-Match": f'"{doc["_rev"]}"'})
    assert changed.status_code == 200 and changed.get_json()["name"] == "b.txt"
    stale = project.server.patch(f"/v1/files/{doc['_id']}", json={"public": True},
                                 headers={"If-Match": f'"{doc["_rev"]}"'})
    assert stale.status_code == 412
    assert project.server.patch(f"/v1/files/{doc['_id']}", json={"size": 1}).status_code == 400
    assert project.server.delete(f"/v1/files/{doc['_id']}").status_code == 204
    assert project.server.get(f"/v1/files/{doc['_id']}").status_code == 404
    assert stored_keys(blobs, project.id) == []


def test_list_filter_sort_cursor(project):
    ids = [upload(project.server, bytes(i + 1), name=f"f{i}.bin", metadata='{"n": %d}' % i).get_json()["_id"]
           for i in range(5)]
    page = project.server.get("/v1/files", query_string={"sort": "size", "limit": 2}).get_json()
    assert [item["_id"] for item in page["items"]] == ids[:2]
    second = project.server.get("/v1/files", query_string={"sort": "size", "limit": 2,
                                                           "cursor": page["next_cursor"]}).get_json()
    assert [item["_id"] for item in second["items"]] == ids[2:4]
    filtered = project.server.get("/v1/files", query_string={"filter": '{"metadata.n": {"$gte": 3}}'}).get_json()
    assert sorted(item["_id"] for item in filtered["items"]) == sorted(ids[3:])
    bad = project.server.get("/v1/files", query_string={"filter": '{"name": {"$where": "1"}}'})
    assert bad.status_code == 400


def test_uploads_of_several_storage_parts_stream_whole(live_url, project):
    """Two full 8 MiB parts and nothing after (chunked, so the end is only seen by reading), and a known length one
    byte past three parts (a part buffer is reused once those in flight are sent): the part loop's edges."""
    block = random_bytes(1024 * 1024)
    headers = {"X-API-Key": project.server_key, "Content-Type": "application/octet-stream"}
    for blocks, extra, chunked in ((16, b"", True), (24, b"!", False)):
        data = block * blocks + extra
        body = (block for _ in range(blocks)) if chunked else data
        response = requests.post(f"{live_url}/v1/files", data=body, headers=headers)
        assert response.status_code == 201, response.text
        doc = response.json()
        assert doc["size"] == len(data) and doc["sha256"] == hashlib.sha256(data).hexdigest()
        got = requests.get(f"{live_url}/v1/files/{doc['_id']}/content", headers=headers)
        assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()


def test_file_bytes_in_and_out_are_counted_in_metrics(app, project):
    from prometheus_client.parser import text_string_to_metric_families

    def counted():
        text = app.extensions["baas"].metrics.render().decode()
        return {s.labels["direction"]: s.value for f in text_string_to_metric_families(text)
                for s in f.samples if s.name == "baas_file_bytes_total"}

    before = counted()
    doc = upload(project.server, random_bytes(70_000)).get_json()
    assert project.server.get(f"/v1/files/{doc['_id']}/content", headers={"Range": "bytes=0-999"}).status_code == 206
    after = counted()
    assert after.get("in", 0) - before.get("in", 0) == 70_000
    assert after.get("out", 0) - before.get("out", 0) == 1000


def test_a_raw_upload_cut_before_its_content_length_leaves_nothing(live_url, project, blobs, files):
    """The body reader stops at Content-Length and takes an earlier end for a dropped client: 400, and no object,
    no metadata, no pending entry."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(live_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall((f"POST /v1/files?name=cut.bin HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                      f"X-API-Key: {project.server_key}\r\nContent-Type: application/octet-stream\r\n"
                      f"Connection: close\r\nContent-Length: 500000\r\n\r\n").encode() + random_bytes(200_000))
        sock.shutdown(socket.SHUT_WR)  # the body ends 300,000 bytes early; the answer can still come back
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"ended before the announced number of bytes" in answer
    assert stored_keys(blobs, project.id) == []
    assert files.pending.count_documents({"project_id": project.id}) == 0
    assert requests.get(f"{live_url}/v1/files", headers={"X-API-Key": project.server_key}).json()["items"] == []
    # A whole body right after is stored as usual.
    data = random_bytes(500_000)
    response = requests.post(f"{live_url}/v1/files", data=data, headers={
        "X-API-Key": project.server_key, "Content-Type": "application/octet-stream"})
    assert response.status_code == 201 and response.json()["size"] == len(data)
