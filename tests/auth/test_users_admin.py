"""User administration with server keys (/v1/users) and the admin API (/admin/v1/projects/<id>/users)."""
from auth_helpers import PASSWORD, login


def test_server_key_user_crud(project, make_user):
    created = project.server.post("/v1/users", json={"email": "Staff@Example.com", "password": PASSWORD,
                                                     "roles": ["staff", "staff", "ops"], "data": {"team": "a"},
                                                     "email_verified": True})
    assert created.status_code == 201, created.get_json()
    user = created.get_json()
    assert user["email"] == "staff@example.com" and user["roles"] == ["staff", "ops"]
    assert user["email_verified"] is True and "password_hash" not in user
    assert login(project, "staff@example.com").status_code == 200
    shown = project.server.get(f"/v1/users/{user['id']}")
    assert shown.status_code == 200 and shown.get_json()["data"] == {"team": "a"}
    updated = project.server.patch(f"/v1/users/{user['id']}", json={"roles": ["ops"], "data": {"team": "b"}})
    assert updated.status_code == 200
    assert updated.get_json()["roles"] == ["ops"] and updated.get_json()["data"] == {"team": "b"}
    assert project.server.delete(f"/v1/users/{user['id']}").status_code == 204
    assert project.server.get(f"/v1/users/{user['id']}").status_code == 404
    assert project.server.delete(f"/v1/users/{user['id']}").status_code == 404
    assert project.server.patch("/v1/users/u_nope", json={"roles": []}).status_code == 404


def test_server_key_user_errors(project, make_user):
    make_user(project, email="dup@example.com")
    assert project.server.post("/v1/users", json={"email": "DUP@example.com"}).status_code == 409
    assert project.server.post("/v1/users", json={"email": "x@example.com", "roles": ["$admin"]}).status_code == 400
    assert project.server.post("/v1/users", json={"email": "x@example.com", "roles": ["r"] * 51}).status_code == 400
    assert project.server.post("/v1/users", json={"email": "x@example.com", "password": "short"}).status_code == 400
    assert project.server.post("/v1/users", json={"email": "x@example.com", "is_admin": True}).status_code == 422
    assert project.server.patch("/v1/users/u_x", json={"email": "y@example.com"}).status_code == 422
    assert project.server.get("/v1/users?limit=0").status_code == 422
    # A user created without a password cannot log in until it sets one.
    created = project.server.post("/v1/users", json={"email": "nopass@example.com"})
    assert created.status_code == 201
    assert login(project, "nopass@example.com").status_code == 401


def test_listing_pages_through_users(project, make_user):
    emails = {f"list{i}@example.com" for i in range(5)}
    for email in emails:
        assert project.server.post("/v1/users", json={"email": email}).status_code == 201
    seen, after = [], None
    while True:
        query = "?limit=2" + (f"&after={after}" if after else "")
        page = project.server.get("/v1/users" + query).get_json()
        assert len(page["users"]) <= 2
        seen.extend(page["users"])
        after = page["next"]
        if after is None:
            break
    assert {u["email"] for u in seen} == emails and len(seen) == 5
    assert [u["id"] for u in seen] == sorted(u["id"] for u in seen)
    found = project.server.get("/v1/users?email=LIST3@example.com").get_json()["users"]
    assert [u["email"] for u in found] == ["list3@example.com"]


def test_client_keys_and_users_cannot_administer_users(project, make_user):
    user = make_user(project)
    for response in (project.client.get("/v1/users"), user.get("/v1/users"),
                     user.patch(f"/v1/users/{user.user_id}", json={"roles": ["admin"]}),
                     project.client.post("/v1/users", json={"email": "x@example.com"}),
                     user.delete(f"/v1/users/{user.user_id}")):
        assert response.status_code == 403, response.get_json()
        assert "server key" in response.get_json()["message"]
    assert user.get("/v1/auth/me").get_json()["roles"] == []


def test_server_key_scopes(admin, project):
    from baas.testing import ApiClient

    response = admin.post(f"/admin/v1/projects/{project.id}/keys",
                          json={"kind": "server", "name": "reader", "scopes": ["users:read"]})
    reader = ApiClient(project.client.client, {"X-API-Key": response.get_json()["key"]})
    assert reader.get("/v1/users").status_code == 200
    refused = reader.post("/v1/users", json={"email": "x@example.com"})
    assert refused.status_code == 403 and "users:write" in refused.get_json()["message"]


def test_server_keys_see_only_their_project(admin, client, project, make_user):
    from baas.testing import create_project

    other = create_project(admin, client)
    user = make_user(project)
    assert other.server.get(f"/v1/users/{user.user_id}").status_code == 404
    assert other.server.delete(f"/v1/users/{user.user_id}").status_code == 404
    assert user.get("/v1/auth/me").status_code == 200


def test_admin_api_user_crud(admin, project, make_user):
    base = f"/admin/v1/projects/{project.id}/users"
    user = make_user(project)
    listed = admin.get(base)
    assert listed.status_code == 200 and [u["id"] for u in listed.get_json()["users"]] == [user.user_id]
    created = admin.post(base, json={"email": "ops@example.com", "password": PASSWORD, "roles": ["ops"]})
    assert created.status_code == 201
    new_id = created.get_json()["id"]
    assert admin.get(f"{base}/{new_id}").get_json()["roles"] == ["ops"]
    disabled = admin.patch(f"{base}/{user.user_id}", json={"disabled": True})
    assert disabled.status_code == 200 and disabled.get_json()["disabled"] is True
    assert user.get("/v1/auth/me").status_code == 401
    assert admin.delete(f"{base}/{new_id}").status_code == 204
    assert admin.get(f"{base}/{new_id}").status_code == 404
    assert admin.get("/admin/v1/projects/no-such-project/users").status_code == 404
    assert admin.post("/admin/v1/projects/no-such-project/users", json={"email": "a@example.com"}).status_code == 404
    # Without the admin token: 401.
    assert project.server.get(base, headers={"Authorization": "Bearer wrong"}).status_code == 401
