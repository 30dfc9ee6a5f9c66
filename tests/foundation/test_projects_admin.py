"""The platform admin API for projects: /admin/v1/projects."""
from __future__ import annotations

import io
import secrets

import pytest

from baas.projects.service import project_prefix
from baas.testing import wait_until


def new_id() -> str:
    return "p-" + secrets.token_hex(4)


def test_create_returns_201_with_the_project(admin):
    project_id = new_id()
    response = admin.post("/admin/v1/projects", json={"id": project_id, "name": "My App"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"] == project_id
    assert body["name"] == "My App"
    assert body["settings"] == {}
    assert body["created_at"] and body["updated_at"]
    assert "_id" not in body and "status" not in body


def test_create_without_name_uses_the_id(admin):
    project_id = new_id()
    body = admin.post("/admin/v1/projects", json={"id": project_id}).get_json()
    assert body["name"] == project_id


def test_duplicate_id_is_409(admin):
    project_id = new_id()
    assert admin.post("/admin/v1/projects", json={"id": project_id}).status_code == 201
    response = admin.post("/admin/v1/projects", json={"id": project_id, "name": "again"})
    assert response.status_code == 409
    assert response.get_json()["code"] == 409
    assert project_id in response.get_json()["message"]
    assert admin.get(f"/admin/v1/projects/{project_id}").get_json()["name"] == project_id  # untouched


@pytest.mark.parametrize("bad_id", ["ab", "Upper", "has_underscore", "-leading", "trailing-", "1starts-digit",
                                    "a" * 41, "admin", "with space", "dot.ted", "../etc", "tab\t"])
def test_bad_ids_are_400(admin, bad_id):
    response = admin.post("/admin/v1/projects", json={"id": bad_id})
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["code"] == 400 and "id" in body["errors"]
    assert bad_id not in [p["id"] for p in admin.get("/admin/v1/projects").get_json()]


@pytest.mark.parametrize("body", [{"id": {"$gt": ""}}, {"id": ["a"]}, {"name": "no id"}, {"id": "ok-id", "x": 1},
                                  {"id": "ok-id", "settings": {"cors_origins": "https://a.example"}},
                                  {"id": "ok-id", "settings": {"unknown": True}}])
def test_malformed_create_bodies_are_refused_without_writing(admin, body):
    response = admin.post("/admin/v1/projects", json=body)
    assert response.status_code in (400, 422)
    assert response.get_json()["code"] == response.status_code
    assert "ok-id" not in [p["id"] for p in admin.get("/admin/v1/projects").get_json()]


def test_list_and_show(admin):
    ids = [new_id(), new_id()]
    for project_id in ids:
        admin.post("/admin/v1/projects", json={"id": project_id})
    listed = admin.get("/admin/v1/projects")
    assert listed.status_code == 200
    assert [p["id"] for p in listed.get_json() if p["id"] in ids] == ids   # in creation order
    shown = admin.get(f"/admin/v1/projects/{ids[1]}")
    assert shown.status_code == 200 and shown.get_json()["id"] == ids[1]
    missing = admin.get("/admin/v1/projects/no-such-project")
    assert missing.status_code == 404
    assert missing.get_json()["message"] == "No project 'no-such-project'."


def test_update_name_and_merge_settings(admin):
    project_id = new_id()
    admin.post("/admin/v1/projects", json={"id": project_id, "settings": {"strict_collections": True}})
    response = admin.patch(f"/admin/v1/projects/{project_id}",
                           json={"name": "Renamed", "settings": {"cors_origins": ["https://app.example.com"]}})
    assert response.status_code == 200
    body = response.get_json()
    assert body["name"] == "Renamed"
    assert body["settings"] == {"strict_collections": True, "cors_origins": ["https://app.example.com"]}
    assert admin.get(f"/admin/v1/projects/{project_id}").get_json()["settings"]["cors_origins"] == \
        ["https://app.example.com"]


@pytest.mark.parametrize("body", [{"settings": {"cors_origins": [""]}}, {"settings": {"nope": 1}},
                                  {"name": ""}, {"id": "renamed"}])
def test_bad_updates_are_refused(admin, body):
    project_id = new_id()
    admin.post("/admin/v1/projects", json={"id": project_id})
    response = admin.patch(f"/admin/v1/projects/{project_id}", json=body)
    assert response.status_code == 422
    assert admin.get(f"/admin/v1/projects/{project_id}").get_json()["settings"] == {}


def test_update_of_a_missing_project_is_404(admin):
    assert admin.patch("/admin/v1/projects/no-such-project", json={"name": "x"}).status_code == 404


@pytest.mark.parametrize("body", [None, {}, {"confirm": "something-else"}, {"confirm": None}])
def test_delete_needs_the_id_repeated(admin, project, body):
    kwargs = {} if body is None else {"json": body}
    response = admin.delete(f"/admin/v1/projects/{project.id}", **kwargs)
    assert response.status_code == 400, response.get_json()
    # No body at all is refused before its fields are looked at, like every required body.
    assert ("json" if body is None else "confirm") in response.get_json()["errors"]
    assert admin.get(f"/admin/v1/projects/{project.id}").status_code == 200
    assert project.server.get("/v1/project").status_code == 200


def test_delete_removes_database_files_and_keys(app, admin, project):
    svc = app.extensions["baas"]
    database = svc.mongo.project_db(project.id)
    database["things"].insert_one({"_id": "one", "v": 1})
    # Asked of the project's database alone: listing every database of the shared test server is slow.
    assert svc.mongo.project_db(project.id).list_collection_names() != []
    prefix = project_prefix(project.id)
    svc.blobs.put(prefix + "files/a.txt", io.BytesIO(b"hello"), 5, "text/plain")
    svc.blobs.put(prefix + "files/deep/b.bin", io.BytesIO(b"\x00\x01"), 2, "application/octet-stream")
    other = admin.post("/admin/v1/projects", json={"id": new_id()}).get_json()["id"]
    svc.blobs.put(project_prefix(other) + "keep.txt", io.BytesIO(b"keep"), 4, "text/plain")
    assert project.server.get("/v1/project").status_code == 200

    response = admin.delete(f"/admin/v1/projects/{project.id}", json={"confirm": project.id})
    assert response.status_code == 204
    assert response.data == b""

    assert admin.get(f"/admin/v1/projects/{project.id}").status_code == 404
    assert project.id not in [p["id"] for p in admin.get("/admin/v1/projects").get_json()]
    assert svc.mongo.project_db(project.id).list_collection_names() == []
    assert list(svc.blobs.list(prefix)) == []
    assert [b.key for b in svc.blobs.list(project_prefix(other))] == [project_prefix(other) + "keep.txt"]
    assert svc.mongo.platform["api_keys"].count_documents({"project_id": project.id}) == 0

    def refused(api):
        response = api.get("/v1/project")
        return response.status_code == 401 and response

    for api in (project.server, project.client):
        response = wait_until(lambda: refused(api), timeout=5, message="the deleted project's keys to stop working")
        assert response.get_json()["message"] == "Unknown API key."
    assert admin.get(f"/admin/v1/projects/{project.id}/keys").status_code == 404
    # The id is free again, with nothing left over.
    assert admin.post("/admin/v1/projects", json={"id": project.id}).status_code == 201
    assert database["things"].find_one({"_id": "one"}) is None


def test_delete_of_a_missing_project_is_404(admin):
    response = admin.delete("/admin/v1/projects/no-such-project", json={"confirm": "no-such-project"})
    assert response.status_code == 404


def test_a_half_finished_delete_can_be_run_again(app, admin, project):
    svc = app.extensions["baas"]
    svc.blobs.put(project_prefix(project.id) + "x.txt", io.BytesIO(b"x"), 1, "text/plain")
    # As if a delete had crashed after marking the project.
    svc.mongo.platform["projects"].update_one({"_id": project.id}, {"$set": {"status": "deleting"}})
    assert admin.get(f"/admin/v1/projects/{project.id}").status_code == 404
    response = admin.delete(f"/admin/v1/projects/{project.id}", json={"confirm": project.id})
    assert response.status_code == 204
    assert list(svc.blobs.list(project_prefix(project.id))) == []
    assert svc.mongo.platform["projects"].find_one({"_id": project.id}) is None


def test_project_admin_api_needs_the_admin_token(client, project):
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic abc"},
                    {"X-API-Key": project.server_key}, {"Authorization": f"Bearer {project.server_key}"}):
        for method, path, kwargs in (("GET", "/admin/v1/projects", {}),
                                     ("POST", "/admin/v1/projects", {"json": {"id": "sneaky"}}),
                                     ("DELETE", f"/admin/v1/projects/{project.id}", {"json": {"confirm": project.id}})):
            response = client.open(path, method=method, headers=headers, **kwargs)
            assert response.status_code == 401, (headers, path)
            body = response.get_json()
            assert body["code"] == 401 and "admin" in body["message"].lower()
    assert project.server.get("/v1/project").status_code == 200
