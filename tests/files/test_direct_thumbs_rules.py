"""Presigned direct transfer, thumbnails, access rules, isolation, usage, user and project deletion."""
import hashlib
import io

import requests
from PIL import Image

from baas.testing import create_project, wait_until
from files_helpers import OPEN_RULES, open_rules, png_bytes, random_bytes, stored_keys, upload


def test_direct_transfer(project, backend, blobs, files, task_runner):
    started = project.server.post("/v1/files/uploads", json={"name": "big.png", "content_type": "image/png"})
    if backend == "local":
        assert started.status_code == 409 and "S3" in started.get_json()["message"]
        return
    assert started.status_code == 201, started.get_json()
    body = started.get_json()
    early = project.server.post(f"/v1/files/uploads/{body['id']}/complete")
    assert early.status_code == 409
    image = png_bytes(64, 64)
    put = requests.put(body["url"], data=image, headers=body["headers"], timeout=30)
    assert put.status_code == 200
    done = project.server.post(f"/v1/files/uploads/{body['id']}/complete")
    assert done.status_code == 201, done.get_json()
    doc = done.get_json()
    assert doc["_id"] == body["file_id"] and doc["content_type"] == "image/png" and doc["size"] == len(image)
    # Answered without reading the object back: background work hashes it; the file is readable meanwhile.
    assert doc["sha256"] is None and doc["sha256_state"] == "pending" and files.read_backs == 0
    assert project.server.get(f"/v1/files/{doc['_id']}/content").data == image
    task_runner.drain()
    hashed = project.server.get(f"/v1/files/{doc['_id']}").get_json()
    assert hashed["sha256"] == hashlib.sha256(image).hexdigest() and hashed["sha256_state"] == "done"
    assert hashed["_rev"] != doc["_rev"] and files.tasks.count_documents({"project_id": project.id}) == 0
    # Refused type and too big: the object is deleted.
    assert project.server.patch("/v1/files/settings", json={"max_file_bytes": 1000}).status_code == 200
    for payload, status in ((b"\x7fELF\x02\x01\x01" + b"\x00" * 100, 415), (random_bytes(2000), 413)):
        pending = project.server.post("/v1/files/uploads", json={"name": "x"}).get_json()
        requests.put(pending["url"], data=payload, headers=pending["headers"], timeout=30)
        refused = project.server.post(f"/v1/files/uploads/{pending['id']}/complete")
        assert refused.status_code == status, refused.get_json()
    assert stored_keys(blobs, project.id) == [f"projects/{project.id}/files/{doc['_id']}"]
    # Uncompleted uploads are removed after their timeout.
    forgotten = project.server.post("/v1/files/uploads", json={"name": "y"}).get_json()
    requests.put(forgotten["url"], data=b"abc", headers=forgotten["headers"], timeout=30)
    from datetime import datetime, timedelta, timezone

    files.sweep(datetime.now(timezone.utc) + timedelta(hours=2))
    assert stored_keys(blobs, project.id) == [f"projects/{project.id}/files/{doc['_id']}"]
    # Presigned download redirects, when the project asks for them.
    assert project.server.patch("/v1/files/settings", json={"presigned_downloads": True}).status_code == 200
    redirect = project.server.get(f"/v1/files/{doc['_id']}/content")
    assert redirect.status_code == 302
    assert requests.get(redirect.headers["Location"], timeout=30).content == image


def test_thumbnails(project, blobs):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the thumbnail must come out upright
    exif[0x010F] = "SecretCam"
    photo = png_bytes(300, 100, exif=exif)
    doc = upload(project.server, photo, name="p.jpg").get_json()
    assert doc["content_type"] == "image/jpeg"
    url = f"/v1/files/{doc['_id']}/content"
    thumb = project.server.get(url, query_string={"thumb": "64x64", "fit": "contain"})
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(thumb.data))
    assert image.size[1] == 64 and image.size[0] in (21, 22)  # 300x100 turned upright is 100x300
    assert not image.getexif()  # metadata stripped
    cover = project.server.get(url, query_string={"thumb": "64x64"})
    assert Image.open(io.BytesIO(cover.data)).size == (64, 64)
    assert project.server.get(url, query_string={"thumb": "64x64"}).data == cover.data  # served from the cache
    assert len([k for k in stored_keys(blobs, project.id) if "/thumbs/" in k]) == 2
    assert project.server.get(url, query_string={"thumb": "65x65"}).status_code == 400
    assert project.server.get(url, query_string={"thumb": "64x64", "fit": "stretch"}).status_code == 400
    text = upload(project.server, b"hello").get_json()
    assert project.server.get(f"/v1/files/{text['_id']}/content", query_string={"thumb": "64x64"}).status_code == 400
    assert project.server.delete(f"/v1/files/{doc['_id']}").status_code == 204
    assert [k for k in stored_keys(blobs, project.id) if doc["_id"] in k] == []


def test_decompression_bomb_is_400(project):
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")  # 100 Mpixels in a few kB
    doc = upload(project.server, out.getvalue(), name="bomb.png").get_json()
    response = project.server.get(f"/v1/files/{doc['_id']}/content", query_string={"thumb": "200x200"})
    assert response.status_code == 400 and "pixels" in response.get_json()["message"]


def test_rules_secure_by_default_public_and_owner(project, make_user):
    doc = upload(project.server, b"secret").get_json()
    user = make_user(project)
    assert upload(user, b"x").status_code == 403
    assert user.get(f"/v1/files/{doc['_id']}").status_code == 404
    assert project.client.get("/v1/files").status_code == 403
    open_rules(project)
    mine = upload(user, b"mine").get_json()
    assert mine["_owner"] == user.user_id
    other = make_user(project)
    assert other.get(f"/v1/files/{mine['_id']}/content").status_code == 404
    assert other.delete(f"/v1/files/{mine['_id']}").status_code == 404
    assert [f["_id"] for f in other.get("/v1/files").get_json()["items"]] == []
    assert user.patch(f"/v1/files/{mine['_id']}", json={"public": True}).status_code == 200
    assert other.get(f"/v1/files/{mine['_id']}/content").data == b"mine"
    assert project.client.get(f"/v1/files/{mine['_id']}/content").data == b"mine"  # public: no user needed
    assert other.patch(f"/v1/files/{mine['_id']}", json={"name": "pwned"}).status_code == 403
    assert user.delete(f"/v1/files/{mine['_id']}").status_code == 204


def test_invalid_rules_are_refused(project):
    bad = project.server.patch("/v1/files/settings", json={"rules": {"read": "everyone"}})
    assert bad.status_code == 400 and set(bad.get_json()) >= {"code", "status", "message", "errors"}
    assert project.server.patch("/v1/files/settings", json={"rules": {"aggregate": "public"}}).status_code == 400
    assert project.server.patch("/v1/files/settings", json={"max_file_bytes": "big"}).status_code == 400
    assert project.client.patch("/v1/files/settings", json={"rules": OPEN_RULES}).status_code == 403


def test_cross_project_isolation_usage_and_project_delete(admin, client, project, blobs):
    other = create_project(admin, client)
    doc = upload(project.server, b"12345", public="true").get_json()
    assert other.server.get(f"/v1/files/{doc['_id']}").status_code == 404
    assert other.server.get(f"/v1/files/{doc['_id']}/content").status_code == 404
    assert other.server.delete(f"/v1/files/{doc['_id']}").status_code == 404
    assert other.server.get("/v1/files").get_json()["items"] == []
    upload(project.server, b"678")
    usage = admin.get(f"/admin/v1/projects/{project.id}/files/usage").get_json()
    assert usage == {"project_id": project.id, "bytes": 8, "count": 2}
    project.server.delete(f"/v1/files/{doc['_id']}")
    assert admin.get(f"/admin/v1/projects/{project.id}/files/usage").get_json()["bytes"] == 3
    assert admin.delete(f"/admin/v1/projects/{project.id}", json={"confirm": project.id}).status_code == 204
    assert stored_keys(blobs, project.id) == []
    assert admin.get(f"/admin/v1/projects/{project.id}/files/usage").status_code == 404


def test_user_delete_can_delete_their_files(project, make_user, blobs, files, background):
    open_rules(project)
    assert project.server.patch("/v1/files/settings", json={"delete_with_user": True}).status_code == 200
    user = make_user(project)
    upload(user, b"a")
    kept = upload(project.server, b"b").get_json()
    assert project.server.delete(f"/v1/users/{user.user_id}").status_code == 204
    # Removed by background work, not by the user-delete request.
    wait_until(lambda: stored_keys(blobs, project.id) == [f"projects/{project.id}/files/{kept['_id']}"],
               timeout=15, message="the deleted user's files to be removed")
    assert [f["_id"] for f in project.server.get("/v1/files").get_json()["items"]] == [kept["_id"]]
    wait_until(lambda: files.tasks.count_documents({"project_id": project.id}) == 0, timeout=15,
               message="the task to leave the queue")


def test_invalid_direct_upload_bodies_get_400_in_the_one_error_format(project):
    for body in ({"size": -1}, {"surprise": 1}, {"metadata": "not an object"}):
        bad = project.server.post("/v1/files/uploads", json=body)
        assert bad.status_code == 400, body
        assert bad.get_json()["code"] == 400 and bad.get_json()["errors"]


def test_server_key_moves_a_files_owner(project, make_user):
    open_rules(project)
    first, second = make_user(project), make_user(project)
    doc = upload(first, b"handed over").get_json()
    assert first.patch(f"/v1/files/{doc['_id']}", json={"_owner": second.user_id}).status_code == 403
    moved = project.server.patch(f"/v1/files/{doc['_id']}", json={"_owner": second.user_id})
    assert moved.status_code == 200 and moved.get_json()["_owner"] == second.user_id
    assert first.get(f"/v1/files/{doc['_id']}").status_code == 404
    assert second.get(f"/v1/files/{doc['_id']}/content").data == b"handed over"
    assert project.server.patch(f"/v1/files/{doc['_id']}", json={"_owner": "$where"}).status_code == 400
    assert project.server.patch(f"/v1/files/{doc['_id']}", json={"_owner": None}).get_json()["_owner"] is None


def test_a_put_after_completion_cannot_replace_the_file(project, backend, blobs, files, task_runner):
    """The presigned URL outlives completion: bytes PUT with it later land in staging, never in the file."""
    from datetime import datetime, timedelta, timezone

    if backend == "local":
        return  # no presigned URLs on local disk (test_direct_transfer checks the 409)
    image = png_bytes(48, 48)
    started = project.server.post("/v1/files/uploads", json={"name": "a.png", "content_type": "image/png"}).get_json()
    assert f"/projects/{project.id}/staging/{started['id']}" in started["url"]
    assert requests.put(started["url"], data=image, headers=started["headers"], timeout=30).status_code == 200
    done = project.server.post(f"/v1/files/uploads/{started['id']}/complete")
    assert done.status_code == 201, done.get_json()
    file_key = f"projects/{project.id}/files/{started['file_id']}"
    assert stored_keys(blobs, project.id) == [file_key]  # the staging object went with the copy
    usage = files.usage(project.id)
    # The uploader PUTs an executable, bigger than the limit, with the same URL: a staging object, nothing more.
    assert project.server.patch("/v1/files/settings", json={"max_file_bytes": 5000}).status_code == 200
    swapped = b"\x7fELF\x02\x01\x01" + random_bytes(20_000)
    assert requests.put(started["url"], data=swapped, headers=started["headers"], timeout=30).status_code == 200
    staging = f"projects/{project.id}/staging/{started['id']}"
    assert sorted(stored_keys(blobs, project.id)) == sorted([file_key, staging])
    again = project.server.post(f"/v1/files/uploads/{started['id']}/complete")
    assert again.status_code == 404  # a completed upload cannot be completed again (and copied over the file)
    assert project.server.get(f"/v1/files/{started['file_id']}/content").data == image
    assert project.server.get(f"/v1/files/{started['file_id']}").get_json()["size"] == len(image)
    assert files.usage(project.id) == usage
    task_runner.drain()
    assert project.server.get(f"/v1/files/{started['file_id']}").get_json()["sha256"] == \
        hashlib.sha256(image).hexdigest()
    # Before the URL is dead the sweep leaves the staging object (a PUT could still follow); after, it goes.
    files.sweep()
    assert staging in stored_keys(blobs, project.id)
    files.sweep(datetime.now(timezone.utc) + timedelta(hours=2))
    assert stored_keys(blobs, project.id) == [file_key]
    assert files.pending.count_documents({"project_id": project.id}) == 0
    assert project.server.get(f"/v1/files/{started['file_id']}/content").data == image


def test_a_refused_direct_upload_is_over_and_late_puts_are_swept(project, backend, blobs, files):
    from datetime import datetime, timedelta, timezone

    if backend == "local":
        return
    assert project.server.patch("/v1/files/settings", json={"max_file_bytes": 1000}).status_code == 200
    started = project.server.post("/v1/files/uploads", json={"name": "x"}).get_json()
    requests.put(started["url"], data=random_bytes(2000), headers=started["headers"], timeout=30)
    assert project.server.post(f"/v1/files/uploads/{started['id']}/complete").status_code == 413
    assert stored_keys(blobs, project.id) == []  # never copied: the staging object's size was checked first
    requests.put(started["url"], data=b"small now", headers=started["headers"], timeout=30)
    assert project.server.post(f"/v1/files/uploads/{started['id']}/complete").status_code == 404
    assert project.server.get("/v1/files").get_json()["items"] == []
    files.sweep(datetime.now(timezone.utc) + timedelta(hours=2))
    assert stored_keys(blobs, project.id) == []


def test_a_direct_upload_of_a_deleted_project_is_swept(admin, project, backend, blobs, files):
    from datetime import datetime, timedelta, timezone

    if backend == "local":
        return
    started = project.server.post("/v1/files/uploads", json={"name": "late.bin"}).get_json()
    assert admin.delete(f"/admin/v1/projects/{project.id}", json={"confirm": project.id}).status_code == 204
    # The URL still works after the project is gone: what it writes is removed once it is dead.
    requests.put(started["url"], data=b"left behind", headers=started["headers"], timeout=30)
    assert stored_keys(blobs, project.id) == [f"projects/{project.id}/staging/{started['id']}"]
    files.sweep(datetime.now(timezone.utc) + timedelta(hours=2))
    assert stored_keys(blobs, project.id) == []
    assert files.pending.count_documents({"project_id": project.id}) == 0


def test_one_completion_at_a_time(project, backend, files):
    if backend == "local":
        return
    started = project.server.post("/v1/files/uploads", json={"name": "a.png"}).get_json()
    requests.put(started["url"], data=png_bytes(), headers=started["headers"], timeout=30)
    import time

    files.pending.update_one({"_id": started["id"]}, {"$set": {"busy_until_ts": time.time() + 60}})
    busy = project.server.post(f"/v1/files/uploads/{started['id']}/complete")
    assert busy.status_code == 409 and "Another request" in busy.get_json()["message"]
    files.pending.update_one({"_id": started["id"]}, {"$set": {"busy_until_ts": 0.0}})
    assert project.server.post(f"/v1/files/uploads/{started['id']}/complete").status_code == 201


def test_a_completion_that_dies_midway_leaves_nothing_the_sweep_misses(project, backend, blobs, files, monkeypatch):
    """Copy first, metadata second: dying between them leaves a copy nobody sees, which the sweep removes; dying
    after the metadata leaves an open upload, whose retry answers with the recorded file and copies nothing."""
    from datetime import datetime, timedelta, timezone

    if backend == "local":
        return
    image = png_bytes()
    lost = project.server.post("/v1/files/uploads", json={"name": "lost.png"}).get_json()
    requests.put(lost["url"], data=image, headers=lost["headers"], timeout=30)

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # a BaseException, as a killed request thread would leave things
    monkeypatch.setattr(files, "_record", dies)
    try:
        project.server.post(f"/v1/files/uploads/{lost['id']}/complete")
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    lost_key = f"projects/{project.id}/files/{lost['file_id']}"
    assert lost_key in stored_keys(blobs, project.id)  # copied, never recorded
    kept = project.server.post("/v1/files/uploads", json={"name": "kept.png"}).get_json()
    requests.put(kept["url"], data=image, headers=kept["headers"], timeout=30)
    monkeypatch.setattr(files, "_close_direct", lambda *args, **kwargs: dies())
    try:
        project.server.post(f"/v1/files/uploads/{kept['id']}/complete")
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    files.pending.update_one({"_id": kept["id"]}, {"$set": {"busy_until_ts": 0.0}})  # its claim ran out
    requests.put(kept["url"], data=b"\x7fELF\x02\x01\x01" + b"\x00" * 100, headers=kept["headers"], timeout=30)
    retried = project.server.post(f"/v1/files/uploads/{kept['id']}/complete")
    assert retried.status_code == 201 and retried.get_json()["_id"] == kept["file_id"]
    assert project.server.get(f"/v1/files/{kept['file_id']}/content").data == image  # not copied again
    files.sweep(datetime.now(timezone.utc) + timedelta(hours=2))
    assert stored_keys(blobs, project.id) == [f"projects/{project.id}/files/{kept['file_id']}"]
    assert files.pending.count_documents({"project_id": project.id}) == 0
