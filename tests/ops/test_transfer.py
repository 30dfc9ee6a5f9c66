"""Project export and import: a full round trip, and archives that are refused with nothing written."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from baas.testing import ADMIN_TOKEN, create_project, sign_up_user

PASSWORD = "correct horse battery"


def _archive(client, project_id: str) -> bytes:
    response = client.get(f"/admin/v1/projects/{project_id}/export",
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/gzip"
    return response.data


def _import(client, data: bytes, project_id: str | None = None):
    query = f"?project_id={project_id}" if project_id else ""
    return client.post("/admin/v1/projects/import" + query, data=data,
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/gzip"})


def _seed(admin, client):
    project = create_project(admin, client, "src-app")
    response = admin.put("/admin/v1/projects/src-app/collections/posts", json={
        "indexes": [{"name": "by_score", "keys": {"score": -1}}],
        "rules": {"read": "public", "list": "public", "create": "public"}})
    assert response.status_code == 201, response.get_json()
    for score in range(3):
        assert project.server.post("/v1/collections/posts/documents",
                                   json={"title": f"t{score}", "score": score}).status_code == 201
    user = sign_up_user(project, "ann@example.com", PASSWORD)
    return project, user


def test_round_trip_under_a_new_id_and_the_same_id(admin, client):
    project, _user = _seed(admin, client)
    data = _archive(client, "src-app")

    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        names = archive.getnames()
        manifest = json.loads(archive.extractfile("manifest.json").read())
        for entry in manifest["entries"]:
            assert hashlib.sha256(archive.extractfile(entry["path"]).read()).hexdigest() == entry["sha256"]
        users_line = archive.extractfile("db/_users.jsonl").read().decode().splitlines()[0]
    assert names[-1] == "manifest.json" and "project.json" in names and "keys.jsonl" in names
    assert '{"$date"' in users_line  # canonical Extended JSON keeps dates typed
    assert not any("_sessions" in name or "_refresh_tokens" in name for name in names)

    copied = _import(client, data, "copy-app")
    assert copied.status_code == 201, copied.get_json()
    assert copied.get_json()["keys"] == 0  # key hashes are unique per server
    key = admin.post("/admin/v1/projects/copy-app/keys", json={"kind": "client", "name": "c"}).get_json()["key"]
    listed = client.get("/v1/collections/posts/documents?sort=score", headers={"X-API-Key": key}).get_json()
    assert [doc["title"] for doc in listed["items"]] == ["t0", "t1", "t2"]
    login = client.post("/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD},
                        headers={"X-API-Key": key})
    assert login.status_code == 200, login.get_json()
    definition = admin.get("/admin/v1/projects/copy-app/collections/posts").get_json()
    assert [index["name"] for index in definition["indexes"]] == ["by_score"]

    # Back under its own id after the original is gone: its keys work again.
    assert admin.delete("/admin/v1/projects/src-app", json={"confirm": "src-app"}).status_code == 204
    restored = _import(client, data)
    assert restored.status_code == 201 and restored.get_json()["keys"] == 2
    assert project.client.get("/v1/collections/posts/documents").status_code == 200
    assert _import(client, data).status_code == 409


def test_damaged_archives_are_refused_with_nothing_written(admin, client):
    _seed(admin, client)
    data = _archive(client, "src-app")
    truncated = _import(client, data[: len(data) // 2], "cut-app")
    assert truncated.status_code == 400 and "nothing was imported" in truncated.get_json()["message"]
    assert admin.get("/admin/v1/projects/cut-app").status_code == 404
    assert "cut-app" not in [p["id"] for p in admin.get("/admin/v1/projects").get_json()]

    # One document changed after export: its SHA-256 no longer matches the manifest.
    source = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    altered = io.BytesIO()
    with tarfile.open(fileobj=altered, mode="w:gz") as archive:
        for member in source.getmembers():
            content = source.extractfile(member).read()
            if member.name == "db/_users.jsonl":
                content = content.replace(b"ann@example.com", b"eve@example.com")
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    tampered = _import(client, altered.getvalue(), "evil-app")
    assert tampered.status_code == 400 and "SHA-256" in tampered.get_json()["message"]
    assert admin.get("/admin/v1/projects/evil-app").status_code == 404

    not_gzip = _import(client, b"hello", "junk-app")
    assert not_gzip.status_code == 400
    empty_tar = io.BytesIO()
    with tarfile.open(fileobj=empty_tar, mode="w:gz"):
        pass
    assert "manifest" in _import(client, empty_tar.getvalue(), "junk-app").get_json()["message"]
    assert _import(client, gzip.compress(b"x" * 1000), "junk-app").status_code == 400
    assert _import(client, data, "Bad_Id").status_code == 400
    assert admin.get("/admin/v1/projects/junk-app").status_code == 404


def test_export_of_an_unknown_project_is_404(client):
    response = client.get("/admin/v1/projects/nope-app/export", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 404 and response.get_json()["code"] == 404


def test_archives_over_the_limit_are_refused(make_app, admin, client):
    _seed(admin, client)
    data = _archive(client, "src-app")
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


def test_bson_types_survive_the_round_trip(app, admin, client):
    from datetime import datetime, timezone

    from bson import Binary, Int64, ObjectId

    create_project(admin, client, "types-app")
    mongo = app.extensions["baas"].mongo
    original = {"_id": ObjectId(), "when": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc),
                "blob": Binary(b"\x00\x01\xff"), "big": Int64(2**40),
                "ratio": 0.5, "nested": {"list": [1, "two", None]}}
    # (No Decimal128: nx-27017, the stand-in database, cannot store it; the export writes it as canonical
    # {"$numberDecimal": ...} all the same.)
    mongo.collection("types-app", "typed").insert_one(dict(original))
    stored = mongo.collection("types-app", "typed").find_one({"_id": original["_id"]})
    assert _import(client, _archive(client, "types-app"), "types-copy").status_code == 201
    copied = mongo.collection("types-copy", "typed").find_one({"_id": original["_id"]})
    assert copied == stored
    assert {key: type(value) for key, value in copied.items()} == {key: type(value) for key, value in stored.items()}
