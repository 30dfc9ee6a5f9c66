"""Hostile request bodies on every route that takes one: size, nesting, encoding, content type."""
import json

import pytest

from baas.testing import create_project
from security_helpers import CHEAP_HASHING, assert_error

LIMIT = 4096


@pytest.fixture
def app(make_app):
    return make_app({**CHEAP_HASHING, "server.max_body_bytes": LIMIT})


def body_routes(project, user_id="usr_x", doc_id="d1"):
    """(api, method, path) for every client-API and admin-API route that reads a JSON body."""
    p = project.id
    client_routes = [
        ("POST", "/v1/auth/signup"), ("POST", "/v1/auth/login"), ("POST", "/v1/auth/refresh"),
        ("POST", "/v1/auth/anonymous/upgrade"), ("PATCH", "/v1/auth/me"), ("DELETE", "/v1/auth/me"),
        ("POST", "/v1/auth/me/password"), ("POST", "/v1/auth/verify-email/request"),
        ("POST", "/v1/auth/verify-email/confirm"), ("POST", "/v1/auth/password-reset/request"),
        ("POST", "/v1/auth/password-reset/confirm"),
        ("POST", "/v1/collections/notes/documents"), ("PUT", f"/v1/collections/notes/documents/{doc_id}"),
        ("PATCH", f"/v1/collections/notes/documents/{doc_id}"), ("POST", "/v1/batch"),
        ("PUT", "/v1/collections/notes"), ("POST", "/v1/users"), ("PATCH", f"/v1/users/{user_id}"),
    ]
    admin_routes = [
        ("POST", "/admin/v1/projects"), ("PATCH", f"/admin/v1/projects/{p}"), ("DELETE", f"/admin/v1/projects/{p}"),
        ("POST", f"/admin/v1/projects/{p}/keys"), ("PUT", f"/admin/v1/projects/{p}/collections/notes"),
        ("POST", f"/admin/v1/projects/{p}/users"), ("PATCH", f"/admin/v1/projects/{p}/users/{user_id}"),
    ]
    return client_routes, admin_routes


def state(project, admin):
    """Everything a half-written request could have changed."""
    return (project.server.get("/v1/collections/notes/documents", query_string={"limit": 1000}).get_json(),
            [{k: v for k, v in u.items() if k not in ("last_login_at",)}
             for u in project.server.get("/v1/users").get_json()["users"]],
            admin.get(f"/admin/v1/projects/{project.id}").get_json(),
            len(admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()),
            sorted(p["id"] for p in admin.get("/admin/v1/projects").get_json()["projects"])
            if isinstance(admin.get("/admin/v1/projects").get_json(), dict)
            else sorted(p["id"] for p in admin.get("/admin/v1/projects").get_json()))


@pytest.fixture
def target(project, admin, make_user):
    project.server.put("/v1/collections/notes", json={"rules": {a: "public" for a in
                                                                ("list", "read", "create", "update", "delete")}})
    project.server.post("/v1/collections/notes/documents", json={"_id": "d1", "n": 1})
    user = make_user(project)
    return project, admin, user


def send_all(target, make_body, content_type="application/json"):
    project, admin, user = target
    client_routes, admin_routes = body_routes(project, user.user_id)
    answers = []
    for method, path in client_routes:
        api = project.server if path.startswith("/v1/users") or path == "/v1/collections/notes" else user
        answers.append((method, path, api.open(method, path, data=make_body(), content_type=content_type)))
    for method, path in admin_routes:
        answers.append((method, path, admin.open(method, path, data=make_body(), content_type=content_type)))
    return answers


def test_oversized_bodies_are_413_and_write_nothing(target):
    project, admin, user = target
    before = state(project, admin)
    big = json.dumps({"email": "a@example.com", "password": "p" * 20, "x": "y" * (LIMIT * 2)})
    for method, path, response in send_all(target, lambda: big):
        body = assert_error(response, 413)
        assert str(LIMIT) in body["message"], (method, path)
    assert state(project, admin) == before


def test_oversized_chunked_bodies_over_a_real_socket_are_413(server_process, admin, client):
    """Chunked bodies have no Content-Length; a real server must still refuse them whole."""
    import requests

    project = create_project(admin, client)
    project.server.put("/v1/collections/notes", json={"rules": {"create": "public", "list": "public"}})
    server = server_process({"server.max_body_bytes": LIMIT})
    big = json.dumps({"n": "y" * (LIMIT * 2)}).encode()

    def chunks():
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    response = requests.post(server.url + "/v1/collections/notes/documents", data=chunks(), timeout=30,
                             headers={"X-API-Key": project.server_key, "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["code"] == 413
    small = requests.post(server.url + "/v1/collections/notes/documents", data=iter([b'{"n": 1}']), timeout=30,
                          headers={"X-API-Key": project.server_key, "Content-Type": "application/json"})
    assert small.status_code == 201, small.text
    items = requests.get(server.url + "/v1/collections/notes/documents", timeout=30,
                         headers={"X-API-Key": project.server_key}).json()["items"]
    assert [item["n"] for item in items] == [1]


@pytest.mark.parametrize("name,make_body", [
    ("deep-objects", lambda: '{"a":' * 10_000 + "1" + "}" * 10_000),
    ("deep-arrays", lambda: "[" * 3000 + "]" * 3000),
    ("deep-in-field", lambda: '{"email": ' + '{"a":' * 3000 + "1" + "}" * 3000 + "}"),
    ("nan", lambda: '{"n": NaN, "email": "a@example.com"}'),
    ("infinity", lambda: '{"n": Infinity}'),
    ("bad-utf8", lambda: b'{"n": "\xff\xfe"}'),
    ("lone-surrogate", lambda: '{"n": "\\udc00"}'),
    ("truncated", lambda: '{"n": '),
    ("not-object", lambda: "[1, 2, 3]"),
    ("scalar", lambda: "42"),
    ("null", lambda: "null"),
    ("empty-string", lambda: '""'),
    ("trailing-garbage", lambda: '{"n": 1} x'),
    ("bom", lambda: '\ufeff{"n": 1}'.encode()),
    ("duplicate-operator-key", lambda: '{"n": 1, "n": {"$gt": 0}}'),
    ("huge-int", lambda: '{"n": ' + "9" * 400 + "}"),
])
def test_hostile_json_is_4xx_and_writes_nothing(target, name, make_body):
    project, admin, user = target
    before = state(project, admin)
    for method, path, response in send_all(target, make_body):
        assert response.status_code < 500, (method, path, response.status_code, response.get_data(as_text=True)[:300])
        if response.status_code >= 400:
            assert_error(response, response.status_code)
        else:
            # only a body that is valid JSON for the route may be accepted (strict JSON: no duplicate keys,
            # integers within int64, no lone surrogates)
            assert name == "null" and method == "DELETE", (name, method, path, response.get_data(as_text=True))
    assert state(project, admin) == before, name


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml", "application/jsonx", ""])
def test_wrong_content_types_are_415(target, content_type):
    project, admin, user = target
    before = state(project, admin)
    for method, path, response in send_all(target, lambda: '{"n": 2}', content_type=content_type):
        assert_error(response, 415, 400)
    assert state(project, admin) == before


def test_huge_array_document_is_bounded(target):
    project, admin, user = target
    body = json.dumps({"tags": list(range(LIMIT))})  # over the limit
    assert_error(user.post("/v1/collections/notes/documents", data=body, content_type="application/json"), 413)
