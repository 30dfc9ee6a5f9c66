"""`baas users ...` against a real server: what the CLI changes is what a client of the project then sees."""
import json

import pytest

from baas.testing import wait_until

PASSWORD = "correct horse battery staple"


@pytest.fixture
def users_project(baas, http):
    assert baas("projects", "create", "user-app").exit_code == 0
    key = http.admin("POST", "/admin/v1/projects/user-app/keys", json={"kind": "client", "name": "c"}).json()["key"]
    return key


def _login(http, key, email=None):
    return http.with_key(key, "POST", "/v1/auth/login", json={"email": email or "ann@example.com",
                                                              "password": PASSWORD})


def test_user_lifecycle_through_the_cli(baas, http, users_project, one_line_error):
    key = users_project
    assert "no users yet" in baas("users", "list", "user-app").output

    created = baas("users", "create", "user-app", "ann@example.com", "--password-stdin", "--role", "editor",
                   "--verified", "--data", '{"plan": "pro"}', "--json", input=PASSWORD + "\n")
    assert created.exit_code == 0, created.output
    user = json.loads(created.output)
    user_id = user["id"]
    assert user["roles"] == ["editor"] and user["email_verified"] is True and user["data"] == {"plan": "pro"}
    assert PASSWORD not in created.output
    session = _login(http, key)
    assert session.status_code == 200, session.text

    listed = baas("users", "list", "user-app")
    assert listed.exit_code == 0 and user_id in listed.output and "ann@example.com" in listed.output
    assert "editor" in baas("users", "show", "user-app", user_id).output
    one_line_error(baas("users", "show", "user-app", "usr_missing"), "HTTP 404")
    bad_data = baas("users", "create", "user-app", "bob@example.com", "--data", "[1]")
    assert bad_data.exit_code == 2 and "must be a JSON object" in bad_data.output

    assert baas("users", "set-roles", "user-app", user_id, "admin", "ops").exit_code == 0
    me = http.with_key(key, "GET", "/v1/auth/me",
                       headers={"Authorization": f"Bearer {_login(http, key).json()['access_token']}"})
    assert me.status_code == 200 and me.json()["roles"] == ["admin", "ops"], me.text
    updated = baas("users", "update", "user-app", user_id, "--data", '{"plan": "free"}', "--json")
    assert json.loads(updated.output)["data"] == {"plan": "free"}
    nothing = baas("users", "update", "user-app", user_id)
    assert nothing.exit_code == 2 and "Nothing to change" in nothing.output

    # Signed out everywhere: the refresh token and the access token stop working.
    tokens = _login(http, key).json()
    revoked = baas("users", "revoke-sessions", "user-app", user_id, "--yes", "--json")
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.output)["revoked"] >= 1
    refresh = http.with_key(key, "POST", "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    wait_until(lambda: http.with_key(key, "GET", "/v1/auth/me", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).status_code == 401, message="access token refused")

    # Disable asks first; declining changes nothing.
    declined = baas("users", "disable", "user-app", user_id, input="n\n")
    assert declined.exit_code == 1 and _login(http, key).status_code == 200
    assert baas("users", "disable", "user-app", user_id, "--yes").exit_code == 0
    assert _login(http, key).status_code in (401, 403)
    assert baas("users", "enable", "user-app", user_id).exit_code == 0
    assert _login(http, key).status_code == 200

    assert baas("users", "delete", "user-app", user_id, input="n\n").exit_code == 1
    assert baas("users", "delete", "user-app", user_id, "--yes").exit_code == 0
    assert _login(http, key).status_code == 401
    assert http.admin("GET", f"/admin/v1/projects/user-app/users/{user_id}").status_code == 404
