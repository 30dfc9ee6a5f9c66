"""Keys and tokens of one project, or of the wrong kind, reaching another project or the admin API."""
import json

import pytest

from baas.testing import create_project
from security_helpers import assert_error


def admin_paths(project_id, key_id="key_x", user_id="usr_x"):
    p = project_id
    return [("GET", "/admin/v1/projects"), ("POST", "/admin/v1/projects"), ("GET", f"/admin/v1/projects/{p}"),
            ("PATCH", f"/admin/v1/projects/{p}"), ("DELETE", f"/admin/v1/projects/{p}"),
            ("GET", f"/admin/v1/projects/{p}/keys"), ("POST", f"/admin/v1/projects/{p}/keys"),
            ("GET", f"/admin/v1/projects/{p}/keys/{key_id}"), ("POST", f"/admin/v1/projects/{p}/keys/{key_id}/revoke"),
            ("POST", f"/admin/v1/projects/{p}/keys/{key_id}/rotate"), ("GET", f"/admin/v1/projects/{p}/collections"),
            ("PUT", f"/admin/v1/projects/{p}/collections/notes"), ("GET", f"/admin/v1/projects/{p}/users"),
            ("POST", f"/admin/v1/projects/{p}/users"), ("DELETE", f"/admin/v1/projects/{p}/users/{user_id}")]


def test_project_keys_and_user_tokens_never_open_the_admin_api(admin, client, project, make_user):
    user = make_user(project)
    other = create_project(admin, client)
    key_id = admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()
    key_id = (key_id["keys"] if isinstance(key_id, dict) else key_id)[0]["id"]
    identities = [
        {"X-API-Key": project.server_key}, {"X-API-Key": project.client_key},
        {"Authorization": f"Bearer {project.server_key}"}, {"Authorization": f"Bearer {other.server_key}"},
        {"Authorization": f"Bearer {user.access_token}"},
        {"X-API-Key": project.server_key, "Authorization": f"Bearer {user.access_token}"},
        {"Authorization": "Bearer "}, {"Authorization": "Basic YWRtaW46YWRtaW4="}, {},
    ]
    for headers in identities:
        for method, path in admin_paths(project.id, key_id, user.user_id):
            kwargs = {"json": {"id": "evil", "kind": "server", "confirm": project.id, "email": "e@example.com"}} \
                if method in ("POST", "PUT", "PATCH", "DELETE") else {}
            response = client.open(path, method=method, headers=headers, **kwargs)
            assert_error(response, 401, 403)
    # nothing changed: the project, its keys and its user are all still there, and no project "evil"
    assert admin.get(f"/admin/v1/projects/{project.id}").status_code == 200
    assert admin.get("/admin/v1/projects/evil").status_code == 404
    assert project.server.get("/v1/project").status_code == 200
    assert user.get("/v1/auth/me").status_code == 200


def test_client_key_cannot_use_server_routes(project, make_user):
    user = make_user(project)
    for api in (project.client, user):
        assert_error(api.get("/v1/users"), 403)
        assert_error(api.post("/v1/users", json={"email": "x@example.com"}), 403)
        assert_error(api.patch(f"/v1/users/{user.user_id}", json={"roles": ["admin"]}), 403)
        assert_error(api.delete(f"/v1/users/{user.user_id}"), 403)
        assert_error(api.put("/v1/collections/notes", json={"rules": {"read": "public"}}), 403)
        assert_error(api.delete("/v1/collections/notes"), 403, 404)
    assert user.get("/v1/auth/me").get_json()["roles"] == []


def test_users_of_a_are_invisible_to_b(admin, client, project, make_user):
    user = make_user(project)
    other = create_project(admin, client)
    assert other.server.get("/v1/users").get_json()["users"] == []
    assert_error(other.server.get(f"/v1/users/{user.user_id}"), 404)
    assert_error(other.server.patch(f"/v1/users/{user.user_id}", json={"disabled": True}), 404)
    assert_error(other.server.delete(f"/v1/users/{user.user_id}"), 404)
    assert user.get("/v1/auth/me").get_json()["disabled"] is False
    # B's login with A's credentials fails the same way as any wrong credentials
    response = other.client.post("/v1/auth/login", json={"email": user.email, "password": "correct horse battery"})
    assert_error(response, 401)


@pytest.mark.parametrize("user_id", ['{"$ne":null}', "..%2F..", "%2e%2e", "$where", "usr_x%00"])
def test_strange_user_ids(project, make_user, user_id):
    user = make_user(project)
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"disabled": True}} if method == "PATCH" else {}
        assert_error(project.server.open(method, f"/v1/users/{user_id}", **kwargs), 400, 404)
    assert user.get("/v1/auth/me").get_json()["disabled"] is False


def test_users_list_cursor_and_email_filter_are_not_injectable(project, make_user):
    make_user(project)
    for params in ({"after": '{"$gt": ""}'}, {"email": '{"$ne": null}'}, {"email": "*"}, {"limit": "0"},
                   {"limit": "-1"}, {"after": "x" * 500}):
        response = project.server.get("/v1/users", query_string=params)
        if response.status_code == 200:
            assert response.get_json()["users"] == [], params
        else:
            assert_error(response, 400, 422)


@pytest.mark.parametrize("project_id", ["..", "%2e%2e", "..%2F..", "a/b", "admin", "ＡＢＣ", "a\u0000b", "a.b", "A",
                                        "x" * 200, "$where", "_platform", "", " p", "p-\u0430"])
def test_strange_project_ids_on_create(admin, project_id):
    response = admin.post("/admin/v1/projects", json={"id": project_id, "name": "x"})
    if response.status_code == 201:
        assert project_id in ("admin",), response.get_json()
        return
    assert_error(response, 400, 409)


@pytest.mark.parametrize("path_id", ["..", "%2e%2e", "..%2F..%2Fplatform", "%00", "$where", '{"$ne":null}', "ＡＢＣ"])
def test_strange_project_ids_in_admin_paths(admin, project, path_id):
    for method, path in (("GET", f"/admin/v1/projects/{path_id}"), ("GET", f"/admin/v1/projects/{path_id}/keys"),
                         ("GET", f"/admin/v1/projects/{path_id}/users"),
                         ("GET", f"/admin/v1/projects/{path_id}/collections"),
                         ("DELETE", f"/admin/v1/projects/{path_id}")):
        kwargs = {"json": {"confirm": path_id}} if method == "DELETE" else {}
        assert_error(admin.open(method, path, **kwargs), 400, 404, 405)
    assert admin.get(f"/admin/v1/projects/{project.id}").status_code == 200


@pytest.mark.parametrize("key_id", ["..", "%2e%2e", '{"$ne":null}', "$where", "key_x%00"])
def test_strange_key_ids(admin, project, key_id):
    for suffix in ("", "/revoke", "/rotate"):
        method = "GET" if not suffix else "POST"
        assert_error(admin.open(method, f"/admin/v1/projects/{project.id}/keys/{key_id}{suffix}"), 400, 404, 405)
    assert project.server.get("/v1/project").status_code == 200
    assert project.client.get("/v1/project").status_code == 200


def test_key_of_project_b_cannot_be_revoked_through_project_a(admin, client, project):
    other = create_project(admin, client)
    keys = admin.get(f"/admin/v1/projects/{other.id}/keys").get_json()
    keys = keys["keys"] if isinstance(keys, dict) else keys
    for key in keys:
        assert_error(admin.post(f"/admin/v1/projects/{project.id}/keys/{key['id']}/revoke"), 404)
        assert_error(admin.post(f"/admin/v1/projects/{project.id}/keys/{key['id']}/rotate"), 404)
        assert_error(admin.get(f"/admin/v1/projects/{project.id}/keys/{key['id']}"), 404)
    assert other.server.get("/v1/project").status_code == 200


@pytest.mark.parametrize("body", [{"kind": "client", "settings": {"x": 1}}, {"kind": "client", "project_id": "other"},
                                  {"kind": "client", "hash": "x"}, {"kind": "admin"}, {"kind": "client",
                                                                                       "scopes": ["admin"]},
                                  {"kind": {"$ne": None}}, {"kind": "client", "_id": "key_fixed"},
                                  {"kind": "client", "revoked_at": None, "prefix": "x"}])
def test_key_creation_mass_assignment(admin, project, body):
    before = admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()
    assert_error(admin.post(f"/admin/v1/projects/{project.id}/keys", json=body), 400, 422)
    assert admin.get(f"/admin/v1/projects/{project.id}/keys").get_json() == before


@pytest.mark.parametrize("body", [{"settings": {"cors_origins": {"$ne": None}}}, {"settings": {"unknown": 1}},
                                  {"_id": "other"}, {"id": "other"}, {"settings": {"$set": {"a": 1}}},
                                  {"created_at": "2000-01-01T00:00:00Z"}, {"settings": []}])
def test_project_update_mass_assignment(admin, project, body):
    before = admin.get(f"/admin/v1/projects/{project.id}").get_json()
    assert_error(admin.patch(f"/admin/v1/projects/{project.id}", json=body), 400, 422)
    assert admin.get(f"/admin/v1/projects/{project.id}").get_json() == before


def test_delete_project_needs_matching_confirmation(admin, project):
    for confirm in (None, "", {"$ne": None}, project.id.upper(), project.id + " ", [project.id]):
        body = {} if confirm is None else {"confirm": confirm}
        assert_error(admin.delete(f"/admin/v1/projects/{project.id}", json=body), 400, 422)
    assert project.server.get("/v1/project").status_code == 200


def test_revoked_server_key_of_a_cannot_read_anything(admin, client, project):
    project.server.post("/v1/collections/notes/documents", json={"n": 1})
    keys = admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()
    keys = keys["keys"] if isinstance(keys, dict) else keys
    server_key = [k for k in keys if k["kind"] == "server"][0]
    assert admin.post(f"/admin/v1/projects/{project.id}/keys/{server_key['id']}/revoke").status_code == 200
    from baas.testing import wait_until

    wait_until(lambda: project.server.get("/v1/collections/notes/documents").status_code == 401, timeout=5)
    assert_error(project.server.get("/v1/collections/notes/documents"), 401)


def test_odd_api_key_and_admin_header_values_are_401(client, project):
    for value in ("é" * 10, "x" * 201, " ", project.server_key + " ", project.server_key.upper(),
                  project.server_key[:-1], '{"$ne": null}'):
        response = client.get("/v1/project", headers={"X-API-Key": value})
        assert_error(response, 401)
        response = client.get("/admin/v1/projects", headers={"Authorization": f"Bearer {value}"})
        assert_error(response, 401)


def test_keys_of_a_deleted_project_stop_working_and_its_data_is_gone(admin, client, make_app):
    from baas.testing import wait_until

    doomed = create_project(admin, client)
    doomed.server.post("/v1/collections/notes/documents", json={"n": 1})
    assert admin.delete(f"/admin/v1/projects/{doomed.id}", json={"confirm": doomed.id}).status_code in (200, 204)
    wait_until(lambda: doomed.server.get("/v1/collections/notes/documents").status_code == 401, timeout=5)
    assert_error(doomed.client.get("/v1/project"), 401)
    # re-creating a project with the same id does not resurrect the old keys or data
    again = create_project(admin, client, project_id=doomed.id)
    assert_error(doomed.server.get("/v1/project"), 401)
    response = again.server.get("/v1/collections/notes/documents")
    assert response.status_code == 404 or response.get_json()["items"] == []
