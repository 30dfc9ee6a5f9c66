"""Project export and import: everything of a project round-trips (documents of several BSON types, users, files,
push subscriptions and their VAPID keys, plugin settings, keys); --overwrite switches a project in one step;
damaged archives are refused with nothing written."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from datetime import datetime, timezone

import pytest
from bson import Binary, Int64, ObjectId

from baas.testing import ADMIN_TOKEN, create_project, sign_up_user

from push_receiver import PUSH_CONFIG  # tests/push, put on the path by tests/ops/conftest.py

PASSWORD = "correct horse battery"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TYPED = {"when": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc), "blob": Binary(b"\x00\x01\xff"),
         "big": Int64(2**40), "ratio": 0.5, "ref": ObjectId("64b7f0c2a1b2c3d4e5f60718"),
         "nested": {"list": [1, "two", None, True]}}
# (No Decimal128: nx-27017, the stand-in database, cannot store it; the export writes it as canonical
# {"$numberDecimal": ...} all the same, and a real MongoDB keeps it.)


@pytest.fixture
def app(make_app):
    return make_app(PUSH_CONFIG)


def _archive(client, project_id: str) -> bytes:
    response = client.get(f"/admin/v1/projects/{project_id}/export", headers=ADMIN)
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/gzip"
    return response.data


def _import(client, data: bytes, project_id: str | None = None, overwrite: bool = False):
    query = {key: value for key, value in (("project_id", project_id), ("overwrite", "true" if overwrite else None))
             if value}
    return client.post("/admin/v1/projects/import", data=data, query_string=query,
                       headers={**ADMIN, "Content-Type": "application/gzip"})


def _upload(project, data: bytes, name: str, content_type: str = "application/octet-stream"):
    response = project.server.post("/v1/files", data=data, content_type=content_type, query_string={"name": name})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _seed(app, admin, client, receiver, project_id="src-app"):
    project = create_project(admin, client, project_id)
    response = admin.put(f"/admin/v1/projects/{project_id}/collections/posts", json={
        "indexes": [{"name": "by_score", "keys": {"score": -1}}],
        "rules": {"read": "public", "list": "public", "create": "public"}})
    assert response.status_code == 201, response.get_json()
    for score in range(3):
        assert project.server.post("/v1/collections/posts/documents",
                                   json={"title": f"t{score}", "score": score}).status_code == 201
    mongo = app.extensions["baas"].mongo
    mongo.collection(project_id, "typed").insert_one({"_id": "typed-1", **TYPED})
    user = sign_up_user(project, "ann@example.com", PASSWORD)
    files = [_upload(project, os.urandom(300_000), "noise.bin"),
             _upload(project, b"hello, archive\n" * 10, "hello.txt", "text/plain")]
    device = receiver.device()
    assert user.post("/v1/push/subscriptions", json=device.subscription()).status_code == 201
    enabled = admin.post(f"/admin/v1/projects/{project_id}/plugins/audit_log", json={"settings": {}})
    assert enabled.status_code == 201, enabled.get_json()
    return project, user, files, device


def _content(api, file_id: str) -> bytes:
    response = api.get(f"/v1/files/{file_id}/content")
    assert response.status_code == 200, response.get_json()
    return response.data


def test_round_trip_into_a_new_project_serves_the_same_data_files_users_and_pushes(app, admin, client, receiver):
    project, _user, files, device = _seed(app, admin, client, receiver)
    source_bytes = {doc["_id"]: _content(project.server, doc["_id"]) for doc in files}
    vapid = project.client.get("/v1/push/vapid-public-key").get_json()
    data = _archive(client, "src-app")

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        names = archive.getnames()
        manifest = json.loads(archive.extractfile("manifest.json").read())
        for entry in manifest["entries"]:
            assert hashlib.sha256(archive.extractfile(entry["path"]).read()).hexdigest() == entry["sha256"]
        users_line = archive.extractfile("db/_users.jsonl").read().decode().splitlines()[0]
    assert names[0] == "project.json" and names[-1] == "manifest.json"
    assert {"parts/keys.jsonl", "parts/plugin_settings.jsonl", "parts/push_vapid_keys.jsonl"} <= set(names)
    assert {f"files/{doc['_id']}" for doc in files} <= set(names)
    assert '{"$date"' in users_line and "password_hash" in users_line  # canonical Extended JSON, hashes kept
    assert "db/_sessions.indexes.json" in names and "db/_sessions.jsonl" not in names
    # Stored and deflated members make one gzip stream of several members; the standard tools read it whole.
    listed = subprocess.run(["tar", "-tzf", "-"], input=data, capture_output=True, check=True).stdout.decode()
    assert listed.split() == names

    copied = _import(client, data, "copy-app")
    assert copied.status_code == 201, copied.get_json()
    result = copied.get_json()
    assert result["keys"] == 0 and result["files"] == 2 and result["overwritten"] is False
    assert result["parts"]["plugin_settings"] == 1 and result["parts"]["push_vapid_keys"] == 1
    assert result["file_bytes"] == sum(len(b) for b in source_bytes.values())
    server_key = admin.post("/admin/v1/projects/copy-app/keys", json={"kind": "server", "name": "s"}).get_json()["key"]
    client_key = admin.post("/admin/v1/projects/copy-app/keys", json={"kind": "client", "name": "c"}).get_json()["key"]
    server = project.server.with_headers(**{"X-API-Key": server_key})
    listed = client.get("/v1/collections/posts/documents?sort=score", headers={"X-API-Key": client_key}).get_json()
    assert [doc["title"] for doc in listed["items"]] == ["t0", "t1", "t2"]
    mongo = app.extensions["baas"].mongo
    original = mongo.collection("src-app", "typed").find_one({"_id": "typed-1"})
    imported = mongo.collection("copy-app", "typed").find_one({"_id": "typed-1"})
    assert imported == original and {k: type(v) for k, v in imported.items()} == {k: type(v) for k, v in
                                                                                  original.items()}
    definition = admin.get("/admin/v1/projects/copy-app/collections/posts").get_json()
    assert [index["name"] for index in definition["indexes"]] == ["by_score"]

    # Files: the same bytes, hashes and metadata, stored apart from the original's objects.
    for doc in files:
        shown = server.get(f"/v1/files/{doc['_id']}").get_json()
        assert shown["sha256"] == doc["sha256"] and shown["name"] == doc["name"] and shown["size"] == doc["size"]
        content = _content(server, doc["_id"])
        assert content == source_bytes[doc["_id"]] and hashlib.sha256(content).hexdigest() == doc["sha256"]
    usage = admin.get("/admin/v1/projects/copy-app/files/usage").get_json()
    assert usage == {"project_id": "copy-app", "bytes": result["file_bytes"], "count": 2}

    # Users log in with their old passwords; plugin settings came along.
    login = client.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD},
                        headers={"X-API-Key": client_key})
    assert login.status_code == 200, login.get_json()
    plugins = admin.get("/admin/v1/projects/copy-app/plugins").get_json()
    assert "audit_log" in [entry["plugin"] for entry in plugins]

    # Push: the subscription and the VAPID pair it was made with came along, so the device still gets messages.
    assert client.get("/v1/push/vapid-public-key", headers={"X-API-Key": client_key}).get_json() == vapid
    sent = server.post("/v1/push/messages", json={"audience": {"all": True}, "notification": {"title": "moved"}})
    assert sent.status_code == 202, sent.get_json()
    from baas.push import background_runners

    delivery = next(r for r in background_runners(app.extensions["baas"]) if r.name.startswith("push"))
    try:
        delivery.drain()
    finally:
        delivery.close()
    received = receiver.for_device(device)
    assert [r.payload["title"] for r in received] == ["moved"] and received[0].error is None
    assert received[0].public_key == vapid["public_key"]

    # The copy is its own project: deleting it leaves the original whole.
    storage = f"stores/{mongo.project_db_name('copy-app')[-16:]}/"
    assert any(info.key.startswith(storage) for info in app.extensions["baas"].blobs.list("stores/"))
    assert admin.delete("/admin/v1/projects/copy-app", json={"confirm": "copy-app"}).status_code == 204
    assert _content(project.server, files[0]["_id"]) == source_bytes[files[0]["_id"]]
    assert not any(info.key.startswith(storage) for info in app.extensions["baas"].blobs.list("stores/"))


def test_overwrite_replaces_a_project_in_one_step(app, admin, client, receiver):
    project, _user, files, _device = _seed(app, admin, client, receiver)
    data = _archive(client, "src-app")
    kept_bytes = _content(project.server, files[0]["_id"])
    # Changes after the export, which the overwrite must undo:
    assert project.server.post("/v1/collections/posts/documents", json={"title": "later", "score": 9}
                               ).status_code == 201
    assert project.server.delete(f"/v1/files/{files[0]['_id']}").status_code == 204
    later_file = _upload(project, b"made after the export", "later.txt", "text/plain")
    later_key = admin.post("/admin/v1/projects/src-app/keys", json={"kind": "server", "name": "later"}).get_json()
    sign_up_user(project, "bob@example.com", PASSWORD)
    mongo = app.extensions["baas"].mongo
    blobs = app.extensions["baas"].blobs
    old_database = mongo.project_db_name("src-app")

    refused = _import(client, data)
    assert refused.status_code == 409 and "overwrite" in refused.get_json()["message"]
    replaced = _import(client, data, overwrite=True)
    assert replaced.status_code == 201, replaced.get_json()
    assert replaced.get_json()["overwritten"] is True and replaced.get_json()["keys"] == 2

    titles = [doc["title"] for doc in project.client.get("/v1/collections/posts/documents?sort=score")
              .get_json()["items"]]
    assert titles == ["t0", "t1", "t2"]
    assert _content(project.server, files[0]["_id"]) == kept_bytes  # the deleted file is back
    assert project.server.get(f"/v1/files/{later_file['_id']}").status_code == 404
    assert client.get("/v1/project", headers={"X-API-Key": later_key["key"]}).status_code == 401
    assert project.client.post("/v1/auth/login", json={"email": "bob@example.com", "password": PASSWORD}
                               ).status_code == 401
    assert project.client.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
                               ).status_code == 200
    # The old data is gone: its database and its objects.
    assert old_database not in mongo.client.list_database_names()
    assert mongo.project_db_name("src-app") != old_database
    old_objects = {f"projects/src-app/files/{doc['_id']}" for doc in (files[1], later_file)}
    assert old_objects.isdisjoint(info.key for info in blobs.list("projects/src-app/"))
    usage = admin.get("/admin/v1/projects/src-app/files/usage").get_json()
    assert usage["count"] == 2

    # An overwrite of an imported project drops that import's storage in turn; the project keeps working.
    second = mongo.project_db_name("src-app")
    assert _import(client, data, overwrite=True).status_code == 201
    assert second not in mongo.client.list_database_names()
    assert _content(project.server, files[1]["_id"]) == b"hello, archive\n" * 10
    assert project.server.post("/v1/collections/posts/documents", json={"title": "new", "score": 4}
                               ).status_code == 201
    # Deleting the project removes the imported storage with it.
    current = mongo.project_db_name("src-app")
    assert admin.delete("/admin/v1/projects/src-app", json={"confirm": "src-app"}).status_code == 204
    assert current not in mongo.client.list_database_names()
    assert not [info for info in blobs.list("stores/") if info.key.startswith(f"stores/{current[-16:]}/")]


def _rewrite(data: bytes, change) -> bytes:
    """The archive with `change(name, content) -> content` applied to each member (manifest untouched)."""
    source = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    altered = io.BytesIO()
    with tarfile.open(fileobj=altered, mode="w:gz") as archive:
        for member in source.getmembers():
            content = change(member.name, source.extractfile(member).read())
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    return altered.getvalue()


def _state(app) -> tuple:
    """Databases, imported objects and imports under way: what a refused import must leave as it found."""
    mongo = app.extensions["baas"].mongo
    return (set(mongo.client.list_database_names()), {i.key for i in app.extensions["baas"].blobs.list("stores/")},
            mongo.platform["project_imports"].count_documents({}))


def test_damaged_archives_are_refused_with_nothing_written(app, admin, client, receiver):
    _project, _user, files, _device = _seed(app, admin, client, receiver)
    data = _archive(client, "src-app")
    mongo = app.extensions["baas"].mongo
    before = _state(app)
    src_database = mongo.project_db_name("src-app")

    for cut in (len(data) // 2, len(data) - 40):
        truncated = _import(client, data[:cut], "cut-app")
        assert truncated.status_code == 400 and "nothing was imported" in truncated.get_json()["message"]
        assert admin.get("/admin/v1/projects/cut-app").status_code == 404
        # ... and an overwrite with it leaves the existing project as it was.
        assert _import(client, data[:cut], overwrite=True).status_code == 400
        assert mongo.project_db_name("src-app") == src_database
    assert _state(app) == before

    # One document changed after export: its SHA-256 no longer matches the manifest.
    tampered = _import(client, _rewrite(data, lambda name, content: content.replace(b"ann@example.com",
                                                                                    b"eve@example.com")), "evil-app")
    assert tampered.status_code == 400 and "SHA-256" in tampered.get_json()["message"]

    # A file's bytes changed and the manifest made to agree: the file's own metadata (its sha256) catches it.
    victim = f"files/{files[1]['_id']}"
    swapped = {}

    def swap(name, content):
        if name == victim:
            content = b"something else entirely\n"
            swapped["sha256"] = hashlib.sha256(content).hexdigest()
            swapped["bytes"] = len(content)
        if name == "manifest.json":
            manifest = json.loads(content)
            for entry in manifest["entries"]:
                if entry["path"] == victim:
                    entry.update(sha256=swapped["sha256"], bytes=swapped["bytes"])
            content = json.dumps(manifest).encode()
        return content

    refused = _import(client, _rewrite(data, swap), "evil-app")
    assert refused.status_code == 400 and "do not match its metadata" in refused.get_json()["message"]
    assert admin.get("/admin/v1/projects/evil-app").status_code == 404

    assert _import(client, b"hello", "junk-app").status_code == 400
    empty_tar = io.BytesIO()
    with tarfile.open(fileobj=empty_tar, mode="w:gz"):
        pass
    assert "manifest" in _import(client, empty_tar.getvalue(), "junk-app").get_json()["message"]
    assert _import(client, gzip.compress(b"x" * 1000), "junk-app").status_code == 400
    assert _import(client, data, "Bad_Id").status_code == 400
    sneaky_tar = io.BytesIO()
    with tarfile.open(fileobj=sneaky_tar, mode="w:gz") as archive:
        info = tarfile.TarInfo("../../etc/passwd")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    assert "unexpected entry" in _import(client, sneaky_tar.getvalue(), "junk-app").get_json()["message"]
    assert admin.get("/admin/v1/projects/junk-app").status_code == 404
    assert _state(app) == before


def test_export_of_an_unknown_project_is_404(client):
    response = client.get("/admin/v1/projects/nope-app/export", headers=ADMIN)
    assert response.status_code == 404 and response.get_json()["code"] == 404


def test_archives_over_the_limit_are_refused(make_app, admin, client):
    create_project(admin, client, "small-app")
    data = _archive(client, "small-app")
    small = make_app({"projects.max_import_bytes": 200}).test_client()
    too_big = _import(small, data, "big-app")
    assert too_big.status_code == 413, too_big.get_json()
    # Under the upload limit but unpacking past it (a zip bomb in small):
    bomb = io.BytesIO()
    with tarfile.open(fileobj=bomb, mode="w:gz") as archive:
        info = tarfile.TarInfo("db/x.jsonl")
        info.size = 10_000
        archive.addfile(info, io.BytesIO(b"\n" * 10_000))
    assert len(bomb.getvalue()) < 200
    assert _import(small, bomb.getvalue(), "big-app").status_code == 413
    assert admin.get("/admin/v1/projects/big-app").status_code == 404


def test_files_round_trip_on_local_disk(make_app):
    """The same archive path with files kept under data_dir (no S3)."""
    app = make_app({"storage.s3.endpoint": None})
    client = app.test_client()
    from baas.testing import ApiClient

    admin = ApiClient(client, ADMIN)
    project = create_project(admin, client, "disk-app")
    data = os.urandom(70_000)
    uploaded = _upload(project, data, "disk.bin")
    assert _import(client, _archive(client, "disk-app"), "disk-copy").status_code == 201
    key = admin.post("/admin/v1/projects/disk-copy/keys", json={"kind": "server", "name": "s"}).get_json()["key"]
    copy = project.server.with_headers(**{"X-API-Key": key})
    assert _content(copy, uploaded["_id"]) == data
    assert _import(client, _archive(client, "disk-app"), overwrite=True).status_code == 201
    assert _content(project.server, uploaded["_id"]) == data


def _with_manifest_fixed(data: bytes, change) -> bytes:
    """The archive with `change(name, content)` applied and the manifest's SHA-256s made to agree: an archive
    that passes every check and still cannot be written."""
    hashes = {}

    def apply(name, content):
        if name == "manifest.json":
            manifest = json.loads(content)
            for entry in manifest["entries"]:
                entry.update(hashes.get(entry["path"], {}))
            return json.dumps(manifest).encode()
        changed = change(name, content)
        if changed != content:
            hashes[name] = {"sha256": hashlib.sha256(changed).hexdigest(), "bytes": len(changed)}
        return changed

    return _rewrite(data, apply)


def test_an_import_failing_midway_leaves_nothing_and_the_project_as_it_was(app, admin, client, receiver):
    project, _user, files, _device = _seed(app, admin, client, receiver)
    data = _archive(client, "src-app")
    before = _state(app)
    storage = app.extensions["baas"].mongo.project_db_name("src-app")

    def duplicate_a_post(name, content):
        if name == "db/c_posts.jsonl":
            first = content.splitlines(keepends=True)[0]
            return content + first  # the same _id twice: the database refuses the second
        return content

    broken = _with_manifest_fixed(data, duplicate_a_post)
    refused = _import(client, broken, "half-app")
    assert refused.status_code == 400, refused.get_json()
    assert "db/c_posts.jsonl" in refused.get_json()["message"]
    assert admin.get("/admin/v1/projects/half-app").status_code == 404
    over = _import(client, broken, overwrite=True)
    assert over.status_code == 400
    assert _state(app) == before
    assert app.extensions["baas"].mongo.project_db_name("src-app") == storage
    assert _content(project.server, files[0]["_id"])  # the original still serves its files
    assert project.client.get("/v1/collections/posts/documents").get_json()["items"]


def test_an_import_whose_server_died_is_cleaned_up_by_the_next(app, admin, client):
    import time

    from baas.projects.transfer import ABANDONED_SECONDS, storage_prefix

    svc = app.extensions["baas"]
    create_project(admin, client, "next-app")
    dead = "0123456789abcdef"
    svc.mongo.storage_db(dead)["c_posts"].insert_one({"_id": "left", "title": "half"})
    svc.blobs.put(storage_prefix(dead) + "files/left", io.BytesIO(b"half"), 4, "text/plain")
    svc.mongo.platform["project_imports"].insert_one({"_id": dead, "project_id": "gone-app",
                                                      "started": time.time() - ABANDONED_SECONDS - 60})
    assert svc.mongo.storage_db_name(dead) in svc.mongo.client.list_database_names()
    assert _import(client, _archive(client, "next-app"), "next-copy").status_code == 201
    assert svc.mongo.storage_db_name(dead) not in svc.mongo.client.list_database_names()
    assert list(svc.blobs.list(storage_prefix(dead))) == []
    assert svc.mongo.platform["project_imports"].count_documents({}) == 0


def test_version_1_archives_still_import(admin, client):
    """Archives of the first format: keys.jsonl at the top, no parts, no files."""
    project = create_project(admin, client, "old-app")
    current = tarfile.open(fileobj=io.BytesIO(_archive(client, "old-app")), mode="r:gz")
    old = io.BytesIO()
    with tarfile.open(fileobj=old, mode="w:gz") as archive:
        entries = []
        for member in current.getmembers():
            content = current.extractfile(member).read()
            if member.name == "manifest.json":
                continue
            if member.name.startswith(("parts/", "files/")) and member.name != "parts/keys.jsonl":
                continue
            member.name = "keys.jsonl" if member.name == "parts/keys.jsonl" else member.name
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
            entries.append({"path": member.name, "sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)})
        manifest = json.dumps({"format": "baas-project-export", "version": 1, "entries": entries}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        archive.addfile(info, io.BytesIO(manifest))
    assert admin.delete("/admin/v1/projects/old-app", json={"confirm": "old-app"}).status_code == 204
    imported = _import(client, old.getvalue())
    assert imported.status_code == 201, imported.get_json()
    assert imported.get_json()["keys"] == 2
    assert project.client.get("/v1/project").get_json()["id"] == "old-app"  # its old keys work again
