"""A broad crawl of the API: no response ever carries a hash, a traceback, a secret or a password."""
import json

from baas.testing import ADMIN_TOKEN
from security_helpers import assert_error

SECRET = "test-secret-" + "y" * 32


def keys_of(value, found=None):
    found = set() if found is None else found
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "errors":  # validation errors name the offending input fields, which is fine
                continue
            found.add(str(key).lower())
            keys_of(item, found)
    elif isinstance(value, list):
        for item in value:
            keys_of(item, found)
    return found


def test_no_response_of_a_broad_crawl_leaks_secrets(project, admin, make_user):
    project.server.put("/v1/collections/notes", json={"rules": {a: "public" for a in
                                                                ("list", "read", "create", "update", "delete",
                                                                 "aggregate")}})
    user = make_user(project)
    doc = user.post("/v1/collections/notes/documents", json={"n": 1}).get_json()
    p = project.id
    bad = {"email": {"$gt": ""}, "password": ["x"]}
    calls = [
        (user, "GET", "/v1/auth/me", None), (user, "PATCH", "/v1/auth/me", {"data": {"a": 1}}),
        (project.client, "POST", "/v1/auth/login", {"email": user.email, "password": "correct horse battery"}),
        (project.client, "POST", "/v1/auth/login", {"email": user.email, "password": "wrong password!!"}),
        (project.client, "POST", "/v1/auth/login", bad), (project.client, "POST", "/v1/auth/signup", bad),
        (project.client, "POST", "/v1/auth/signup", {"email": user.email, "password": "correct horse battery"}),
        (project.client, "POST", "/v1/auth/signup", {"email": "short@example.com", "password": "x"}),
        (project.client, "POST", "/v1/auth/anonymous", None),
        (project.client, "POST", "/v1/auth/refresh", {"refresh_token": "nope"}),
        (project.client, "POST", "/v1/auth/password-reset/request", {"email": user.email}),
        (project.client, "POST", "/v1/auth/password-reset/confirm", {"token": "x", "password": "long password"}),
        (user, "POST", "/v1/auth/me/password", {"old": "wrong one!", "new": "another password"}),
        (project.server, "GET", "/v1/users", None), (project.server, "GET", f"/v1/users/{user.user_id}", None),
        (project.server, "POST", "/v1/users", {"email": "made@example.com", "password": "a long password"}),
        (project.server, "PATCH", f"/v1/users/{user.user_id}", {"data": {"b": 2}}),
        (project.client, "GET", "/v1/project", None), (project.server, "GET", "/v1/project", None),
        (project.server, "GET", "/v1/collections", None), (project.server, "GET", "/v1/collections/notes", None),
        (user, "GET", "/v1/collections/notes/documents", None),
        (user, "GET", f"/v1/collections/notes/documents/{doc['_id']}", None),
        (user, "GET", "/v1/collections/notes/documents?filter=%7B%22%24where%22%3A1%7D", None),
        (user, "GET", "/v1/collections/notes/aggregate?group_by=n", None),
        (user, "POST", "/v1/batch", {"operations": [{"op": "create", "collection": "_users", "document": {}}]}),
        (admin, "GET", "/admin/v1/projects", None), (admin, "GET", f"/admin/v1/projects/{p}", None),
        (admin, "GET", f"/admin/v1/projects/{p}/keys", None), (admin, "GET", f"/admin/v1/projects/{p}/users", None),
        (admin, "POST", f"/admin/v1/projects/{p}/keys", {"kind": "client", "name": "crawl"}),
        (admin, "GET", f"/admin/v1/projects/{p}/collections", None),
        (admin, "GET", "/healthz", None), (admin, "GET", "/readyz", None), (admin, "GET", "/nope", None),
        (admin, "DELETE", "/healthz", None), (project.client, "GET", "/v1/nope", None),
    ]
    forbidden_keys = {"password_hash", "hash", "key_hash", "secret", "password", "token_hash", "salt"}
    created_key = None
    for api, method, path, body in calls:
        response = api.open(method, path, json=body) if body is not None else api.open(method, path)
        assert response.status_code < 500, (method, path, response.get_data(as_text=True)[:300])
        text = response.get_data(as_text=True)
        assert "Traceback" not in text and 'File "' not in text, (path, text[:300])
        assert "$argon2" not in text and "$scrypt" not in text, path
        assert SECRET not in text and ADMIN_TOKEN not in text, path
        assert project.server_key not in text and project.client_key not in text, path
        if response.is_json and response.get_json() is not None:
            body_json = response.get_json()
            leaked = keys_of(body_json) & forbidden_keys
            assert not leaked, (method, path, leaked)
            if response.status_code >= 400:
                assert_error(response, response.status_code)
            if path.endswith("/keys") and method == "POST":
                created_key = body_json["key"]
        else:
            assert response.status_code < 400, (method, path, text[:300])
    assert created_key
    listed = admin.get(f"/admin/v1/projects/{p}/keys").get_data(as_text=True)
    assert created_key not in listed


def test_error_messages_do_not_echo_stored_data(project, make_user):
    """A login for an existing but disabled account must not be distinguishable through the message
    from a wrong password only if the password was wrong."""
    user = make_user(project)
    project.server.patch(f"/v1/users/{user.user_id}", json={"disabled": True})
    wrong = project.client.post("/v1/auth/login", json={"email": user.email, "password": "definitely wrong"})
    unknown = project.client.post("/v1/auth/login", json={"email": "ghost@example.com", "password": "definitely wrong"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json()["message"] == unknown.get_json()["message"]


def test_duplicate_signup_does_not_reveal_account_through_verification_mode(project, make_user):
    user = make_user(project)
    response = project.client.post("/v1/auth/signup", json={"email": user.email, "password": "another password"})
    body = assert_error(response, 409)
    assert "hash" not in json.dumps(body)
