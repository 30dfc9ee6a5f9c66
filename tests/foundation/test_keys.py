"""Project API keys: creation, the X-API-Key check, scopes, revocation and rotation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from baas.errors import Forbidden
from baas.principal import SCOPES, KeyInfo, Principal, ProjectInfo
from baas.testing import ADMIN_TOKEN, ApiClient, create_project, wait_until


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def using_key(caller, key: str):
    """The caller's test client, sending `key` as X-API-Key instead of its own."""
    return caller.with_headers(**{"X-API-Key": key})


def make_key(admin, project_id, **body):
    response = admin.post(f"/admin/v1/projects/{project_id}/keys", json={"kind": "client", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def refused_with(api: ApiClient, fragment: str):
    """A predicate for wait_until: the key is refused with 401 and a message containing `fragment`."""
    def check():
        response = api.get("/v1/project")
        return response.status_code == 401 and fragment in response.get_json()["message"] and response
    return check


def test_create_client_and_server_keys_with_scopes_and_expiry(admin, project):
    expires = datetime.now(timezone.utc) + timedelta(days=7)
    created = make_key(admin, project.id, kind="server", name="backend", scopes=["documents:read", "files:write"],
                       expires_at=iso(expires))
    assert created["kind"] == "server" and created["name"] == "backend"
    assert created["scopes"] == ["documents:read", "files:write"]
    assert created["key"].startswith("baas_sk_") and len(created["key"]) > 40
    assert created["key"].startswith(created["prefix"]) and len(created["prefix"]) < len(created["key"]) // 2
    assert created["status"] == "active" and created["project_id"] == project.id
    assert abs(datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00")) - expires) < timedelta(seconds=1)
    assert "hash" not in created

    client_key = make_key(admin, project.id, name="app", scopes=["auth"])
    assert client_key["key"].startswith("baas_ck_") and client_key["expires_at"] is None

    me = using_key(project.server, created["key"]).get("/v1/project").get_json()
    assert me == {"id": project.id, "name": project.id,
                  "key": {"id": created["id"], "kind": "server", "scopes": ["documents:read", "files:write"]}}


def test_plaintext_is_shown_only_at_creation(admin, project):
    created = make_key(admin, project.id, name="once")
    shown = admin.get(f"/admin/v1/projects/{project.id}/keys/{created['id']}").get_json()
    listed = admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()
    assert created["id"] in [k["id"] for k in listed]
    for doc in [shown, *listed]:
        assert "key" not in doc and "hash" not in doc
        assert doc["prefix"] and len(doc["prefix"]) <= 16
        for value in doc.values():
            assert created["key"] != value
    assert shown["prefix"] == created["prefix"]


@pytest.mark.parametrize("body, status", [
    ({"kind": "root"}, 422),
    ({"kind": "client", "scopes": ["everything"]}, 422),
    ({"kind": "client", "scopes": "documents:read"}, 422),
    ({"kind": "client", "expires_at": "2020-01-01T00:00:00+00:00"}, 400),
    ({"kind": "client", "expires_at": "2999-01-01T00:00:00"}, 422),     # no time zone
    ({"kind": "client", "name": ""}, 422),
    ({"kind": "client", "hash": "x"}, 422),
    ({}, 422),
])
def test_bad_key_requests_are_refused(admin, project, body, status):
    before = len(admin.get(f"/admin/v1/projects/{project.id}/keys").get_json())
    response = admin.post(f"/admin/v1/projects/{project.id}/keys", json=body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["code"] == status
    assert len(admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()) == before


def test_keys_of_a_missing_project_are_404(admin):
    assert admin.post("/admin/v1/projects/no-such-project/keys", json={"kind": "client"}).status_code == 404
    assert admin.get("/admin/v1/projects/no-such-project/keys").status_code == 404


def test_missing_unknown_and_malformed_keys_are_401(client, project):
    response = client.get("/v1/project")
    assert response.status_code == 401
    assert "X-API-Key" in response.get_json()["message"]
    for bad in ("baas_ck_nope", project.client_key + "x", project.client_key[:-1], "x" * 500, " "):
        response = client.get("/v1/project", headers={"X-API-Key": bad})
        assert response.status_code == 401, bad
        assert response.get_json()["message"] in ("Unknown API key.",
                                                  "Send your project's API key in the X-API-Key header.")


def test_revoked_key_is_401_saying_revoked(admin, project):
    created = make_key(admin, project.id)
    api = using_key(project.client, created["key"])
    assert api.get("/v1/project").status_code == 200
    response = admin.post(f"/admin/v1/projects/{project.id}/keys/{created['id']}/revoke")
    assert response.status_code == 200
    assert response.get_json()["status"] == "revoked" and response.get_json()["revoked_at"]
    response = api.get("/v1/project")
    assert response.status_code == 401
    assert response.get_json()["message"] == "This API key has been revoked."
    assert project.client.get("/v1/project").status_code == 200      # other keys unaffected
    listed = {k["id"]: k for k in admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()}
    assert listed[created["id"]]["status"] == "revoked"


def test_revoke_and_rotate_store_real_dates(app, admin, project):
    # nx-27017 turns a datetime given to $set into a string; the services must store dates as dates anyway.
    keys = app.extensions["baas"].mongo.platform["api_keys"]
    revoked = make_key(admin, project.id)
    admin.post(f"/admin/v1/projects/{project.id}/keys/{revoked['id']}/revoke")
    assert isinstance(keys.find_one({"_id": revoked["id"]})["revoked_at"], datetime)
    graced = make_key(admin, project.id)
    admin.post(f"/admin/v1/projects/{project.id}/keys/{graced['id']}/rotate", json={"grace_seconds": 60})
    assert isinstance(keys.find_one({"_id": graced["id"]})["expires_at"], datetime)
    admin.patch(f"/admin/v1/projects/{project.id}", json={"name": "renamed"})
    stored = app.extensions["baas"].mongo.platform["projects"].find_one({"_id": project.id})
    assert isinstance(stored["updated_at"], datetime) and stored["updated_at"] >= stored["created_at"]


def test_expired_key_is_401_saying_expired(admin, project):
    created = make_key(admin, project.id, expires_at=iso(datetime.now(timezone.utc) + timedelta(seconds=1.5)))
    api = using_key(project.client, created["key"])
    assert api.get("/v1/project").status_code == 200
    wait_until(refused_with(api, "This API key has expired."), timeout=10, message="the key to expire")
    shown = admin.get(f"/admin/v1/projects/{project.id}/keys/{created['id']}").get_json()
    assert shown["status"] == "expired"


def test_rotate_with_grace_keeps_the_old_key_until_the_grace_ends(admin, project):
    old = make_key(admin, project.id, kind="server", name="worker", scopes=["push:send"])
    old_api = using_key(project.server, old["key"])
    response = admin.post(f"/admin/v1/projects/{project.id}/keys/{old['id']}/rotate", json={"grace_seconds": 2})
    assert response.status_code == 201
    rotated = response.get_json()
    assert rotated["key"] != old["key"] and rotated["key"].startswith("baas_sk_")
    assert (rotated["kind"], rotated["name"], rotated["scopes"]) == ("server", "worker", ["push:send"])
    assert rotated["rotated_from"] == old["id"]
    assert rotated["previous"]["id"] == old["id"] and rotated["previous"]["rotated_to"] == rotated["id"]
    assert rotated["previous"]["expires_at"] and rotated["previous"]["status"] == "active"
    assert "key" not in rotated["previous"]
    new_api = using_key(project.server, rotated["key"])

    assert old_api.get("/v1/project").status_code == 200          # still inside the grace period
    assert new_api.get("/v1/project").get_json()["key"]["id"] == rotated["id"]
    wait_until(refused_with(old_api, "expired"), timeout=10, message="the grace period to end")
    assert new_api.get("/v1/project").status_code == 200


def test_rotate_without_grace_refuses_the_old_key_at_once(admin, project):
    old = make_key(admin, project.id)
    old_api = using_key(project.client, old["key"])
    assert old_api.get("/v1/project").status_code == 200
    response = admin.post(f"/admin/v1/projects/{project.id}/keys/{old['id']}/rotate")
    assert response.status_code == 201
    assert response.get_json()["previous"]["status"] == "revoked"
    new_api = using_key(project.client, response.get_json()["key"])
    assert new_api.get("/v1/project").status_code == 200
    response = old_api.get("/v1/project")
    assert response.status_code == 401 and "revoked" in response.get_json()["message"]
    listed = admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()
    successors = [k for k in listed if k.get("rotated_from") == old["id"]]
    assert [k["status"] for k in successors] == ["active"]


def test_rotate_and_revoke_errors(admin, project):
    key = make_key(admin, project.id)
    for bad in ({"grace_seconds": -1}, {"grace_seconds": 31 * 86400}, {"grace_seconds": "soon"}, {"x": 1}):
        response = admin.post(f"/admin/v1/projects/{project.id}/keys/{key['id']}/rotate", json=bad)
        assert response.status_code == 422, bad
    assert admin.post(f"/admin/v1/projects/{project.id}/keys/key_nope/rotate").status_code == 404
    assert admin.post(f"/admin/v1/projects/{project.id}/keys/key_nope/revoke").status_code == 404
    admin.post(f"/admin/v1/projects/{project.id}/keys/{key['id']}/revoke")
    response = admin.post(f"/admin/v1/projects/{project.id}/keys/{key['id']}/rotate")
    assert response.status_code == 400 and "revoked" in response.get_json()["message"]
    # A failed rotation creates no successor.
    assert not [k for k in admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()
                if k.get("rotated_from") == key["id"]]


def test_scopes_are_enforced_by_the_principal():
    project = ProjectInfo(id="p-one", name="p-one")
    scoped = Principal(project=project, key=KeyInfo(id="k", kind="client", scopes=frozenset({"documents:read"})))
    scoped.require_scope("documents:read")
    with pytest.raises(Forbidden) as info:
        scoped.require_scope("documents:write")
    assert info.value.status == 403 and "documents:write" in info.value.message
    unscoped = Principal(project=project, key=KeyInfo(id="k", kind="client"))
    for scope in SCOPES:
        unscoped.require_scope(scope)           # no scopes listed: every scope
    admin = Principal(project=project, admin=True)
    admin.require_scope("push:send")
    with pytest.raises(Forbidden):
        scoped.require_server()
    Principal(project=project, key=KeyInfo(id="k", kind="server")).require_server()


def test_authenticated_key_carries_its_scopes(app, admin, project):
    created = make_key(admin, project.id, scopes=["files:read"])
    info, key = app.extensions["baas"].keys.authenticate(created["key"])
    assert info.id == project.id
    assert key.scopes == frozenset({"files:read"}) and key.kind == "client"
    assert not Principal(project=info, key=key).has_scope("files:write")


def test_a_key_of_one_project_reaches_nothing_of_another(admin, client, project):
    other = create_project(admin, client)
    # The key alone selects the project: nothing in the request can point it at another one.
    for api in (other.client, other.server):
        for path in ("/v1/project", f"/v1/project?project={project.id}", f"/v1/project?project_id={project.id}"):
            body = api.get(path, headers={"X-Project-ID": project.id}).get_json()
            assert body["id"] == other.id
    # Project keys are not admin credentials, for their own project or any other.
    for key in (other.server_key, other.client_key):
        for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
            for method, path in (("GET", f"/admin/v1/projects/{project.id}"),
                                 ("GET", f"/admin/v1/projects/{project.id}/keys"),
                                 ("GET", f"/admin/v1/projects/{other.id}/keys"),
                                 ("POST", f"/admin/v1/projects/{project.id}/keys")):
                response = client.open(path, method=method, headers=headers, json={"kind": "server"})
                assert response.status_code == 401, (path, headers)
    # A key id of project A addressed under project B is not found, and A's key keeps working.
    a_keys = admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()
    for key in a_keys:
        assert admin.post(f"/admin/v1/projects/{other.id}/keys/{key['id']}/revoke").status_code == 404
        assert admin.post(f"/admin/v1/projects/{other.id}/keys/{key['id']}/rotate").status_code == 404
        assert admin.get(f"/admin/v1/projects/{other.id}/keys/{key['id']}").status_code == 404
    assert project.client.get("/v1/project").status_code == 200
    assert project.server.get("/v1/project").status_code == 200
    assert {k["id"] for k in admin.get(f"/admin/v1/projects/{other.id}/keys").get_json()}.isdisjoint(
        {k["id"] for k in a_keys})


def test_revocation_reaches_another_server_process_within_5_seconds(server_process):
    first = server_process({"keys.cache_seconds": 2})
    second = server_process({"keys.cache_seconds": 2})
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert requests.post(f"{first.url}/admin/v1/projects", json={"id": "shared-one"}, headers=admin,
                         timeout=5).status_code == 201
    created = requests.post(f"{first.url}/admin/v1/projects/shared-one/keys", json={"kind": "server"},
                            headers=admin, timeout=5).json()
    key_headers = {"X-API-Key": created["key"]}
    for server in (first, second):   # both processes have now looked the key up (and cached it)
        response = requests.get(f"{server.url}/v1/project", headers=key_headers, timeout=5)
        assert response.status_code == 200 and response.json()["id"] == "shared-one"

    response = requests.post(f"{first.url}/admin/v1/projects/shared-one/keys/{created['id']}/revoke",
                             headers=admin, timeout=5)
    assert response.status_code == 200

    def refused_on_second():
        response = requests.get(f"{second.url}/v1/project", headers=key_headers, timeout=5)
        return response.status_code == 401 and response.json()["message"] == "This API key has been revoked."

    wait_until(refused_on_second, timeout=5, message="the revocation to reach the second process")
    assert requests.get(f"{first.url}/v1/project", headers=key_headers, timeout=5).status_code == 401
