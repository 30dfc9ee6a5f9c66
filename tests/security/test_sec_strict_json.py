"""One strict JSON parser on every route: NaN, infinities, overflowing and out-of-int64 numbers, duplicate keys,
lone surrogates, deep nesting, missing and non-object bodies all answer 4xx in the one error format, and change
nothing. The routes come from the OpenAPI document, so a route added later is swept too."""
import json
import re

import pytest

from security_helpers import assert_error

INT64_MAX = 2 ** 63 - 1


# A body each route would otherwise accept, with the bad value where the route takes free-form JSON.
TEMPLATES = [
    (r"/documents", '{"n": BAD}'),
    (r"/batch$", '{"operations": [{"op": "create", "collection": "notes", "document": {"n": BAD}}]}'),
    (r"/collections/\{name\}$", '{"schema": {"type": "object", "default": {"n": BAD}}}'),
    (r"^/admin/v1/projects(/\{project_id\})?$", '{"id": "sweep", "name": "sweep", "settings": {"n": BAD}}'),
    (r"", '{"email": "sweep@example.com", "password": "correct horse battery", "data": {"n": BAD}}'),
]
BAD_VALUES = {
    "nan": "NaN",
    "infinity": "Infinity",
    "minus-infinity": "-Infinity",
    "overflows-to-infinity": "1e400",
    "int64-max-plus-one": str(2 ** 63),
    "int64-min-minus-one": str(-2 ** 63 - 1),
    "beyond-64-bits": str(2 ** 64 + 1),
    "duplicate-keys": '1, "n": 2',
    "lone-surrogate": '"\\ud800"',
    "depth-200": "[" * 200 + "]" * 200,
}
WHOLE_BODIES = {
    "empty": "",
    "non-object-list": "[1, 2]",
    "non-object-null": "null",
    "non-object-number": "42",
}
NUMBER_RANGE = {"int64-max-plus-one", "int64-min-minus-one", "beyond-64-bits"}


def bad_body(kind: str, path: str) -> str:
    if kind in WHOLE_BODIES:
        return WHOLE_BODIES[kind]
    template = next(t for pattern, t in TEMPLATES if re.search(pattern, path))
    return template.replace("BAD", BAD_VALUES[kind])


def json_body_routes(client):
    """(method, OpenAPI path, body required) of every operation that declares a JSON request body."""
    spec = client.get("/openapi.json").get_json()
    routes = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body and "application/json" in body.get("content", {}):
                routes.append((method.upper(), path, body.get("required", False)))
    return routes


@pytest.fixture
def target(project, admin, make_user, client):
    everything = {a: "public" for a in ("list", "read", "create", "update", "delete", "aggregate")}
    assert project.server.put("/v1/collections/notes", json={"rules": everything}).status_code in (200, 201)
    assert project.server.post("/v1/collections/notes/documents", json={"_id": "d1", "n": 1}).status_code == 201
    user = make_user(project)
    return project, admin, user, client


def _fill(path: str, project, user) -> str:
    values = {"name": "notes", "doc_id": "d1", "user_id": user.user_id, "project_id": project.id,
              "file_id": "0" * 24, "upload_id": "0" * 32}  # ids of the shape the routes take
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def _caller(path: str, project, admin, user):
    if path.startswith("/admin/"):
        return admin
    if path.startswith("/v1/auth"):
        return user
    return project.server


def _state(project, admin, user):
    """Everything a half-applied request could have changed."""
    return (project.server.get("/v1/collections/notes/documents").get_json(),
            project.server.get("/v1/collections/notes").get_json(),
            sorted(str(u) for u in project.server.get("/v1/users").get_json()["users"]),
            admin.get(f"/admin/v1/projects/{project.id}").get_json(),
            len(admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()),
            user.get("/v1/auth/me").status_code)


def test_the_sweep_covers_the_routes_that_take_bodies(client):
    routes = {(method, path) for method, path, _ in json_body_routes(client)}
    for expected in [("POST", "/v1/auth/signup"), ("POST", "/v1/collections/{name}/documents"),
                     ("PATCH", "/v1/collections/{name}/documents/{doc_id}"), ("POST", "/v1/batch"),
                     ("PUT", "/v1/collections/{name}"), ("PATCH", "/v1/users/{user_id}"),
                     ("PATCH", "/admin/v1/projects/{project_id}"), ("POST", "/admin/v1/projects")]:
        assert expected in routes, expected


@pytest.mark.parametrize("kind", sorted(BAD_VALUES) + sorted(WHOLE_BODIES))
def test_every_json_route_refuses_bad_json_and_changes_nothing(target, kind):
    project, admin, user, client = target
    before = _state(project, admin, user)
    swept = 0
    for method, path, required in json_body_routes(client):
        if kind in WHOLE_BODIES and not required:
            continue
        swept += 1
        url = _fill(path, project, user)
        response = _caller(path, project, admin, user).open(method, url, data=bad_body(kind, path),
                                                          content_type="application/json")
        body = assert_error(response, *range(400, 500))
        text = response.get_data(as_text=True)
        assert "Error" not in body["message"] and "line " not in text.split("JSON")[0], (method, path, text)
        if kind in NUMBER_RANGE:
            assert response.status_code == 400 and "range" in body["message"], (method, path, body)
            assert re.search(r"'([\w\[\]]+\.)*n'", body["message"]), (method, path, body)  # the field is named
    assert swept >= 8
    assert _state(project, admin, user) == before


def test_missing_required_bodies_are_400_and_bump_nothing(target):
    project, admin, user, client = target
    before = project.server.get("/v1/collections/notes").get_json()
    for caller, path in [(project.server, "/v1/collections/notes"),
                         (admin, f"/admin/v1/projects/{project.id}/collections/notes")]:
        body = assert_error(caller.put(path), 400)
        assert "body" in body["message"]
    assert project.server.get("/v1/collections/notes").get_json() == before  # updated_at unchanged
    assert_error(project.server.patch(f"/v1/users/{user.user_id}"), 400)
    assert_error(admin.patch(f"/admin/v1/projects/{project.id}"), 400)
    assert_error(project.server.post("/v1/batch"), 400)


@pytest.mark.parametrize("route", ["/v1/users/{user}", "/admin/v1/projects/{project}",
                                   "/admin/v1/projects/{project}/users/{user}", "/v1/auth/me",
                                   "/v1/collections/notes/documents/d1"])
def test_an_empty_patch_is_400(target, route):
    project, admin, user, client = target
    path = route.format(user=user.user_id, project=project.id)
    caller = admin if path.startswith("/admin/") else user if path.startswith("/v1/auth") else project.server
    body = assert_error(caller.patch(path, json={}), 400)
    assert "at least one field" in body["message"]


def test_patching_a_user_with_nan_is_400_not_404(target):
    project, admin, user, client = target
    response = project.server.patch(f"/v1/users/{user.user_id}", data='{"data": {"x": NaN}}',
                                    content_type="application/json")
    assert_error(response, 400)


def test_no_content_answers_carry_no_content_type(target):
    project, admin, user, client = target
    responses = [project.server.delete("/v1/collections/notes/documents/d1"),
                 project.server.delete("/v1/collections/notes")]
    for response in responses:
        assert response.status_code == 204
        assert "Content-Type" not in response.headers, response.headers
        assert response.get_data() == b""


def test_a_schema_with_nan_is_refused_at_definition_time(target):
    project, admin, user, client = target
    body = '{"schema": {"type": "object", "properties": {"n": {"type": "number", "maximum": NaN}}}}'
    assert_error(project.server.put("/v1/collections/nan_schema", data=body, content_type="application/json"), 400)
    assert project.server.get("/v1/collections/nan_schema").status_code == 404
    # nothing stored as null behind the client's back: writes to the collection still work
    assert project.server.post("/v1/collections/nan_schema/documents", json={"n": 1}).status_code == 201


@pytest.mark.parametrize("admin_route", [False, True])
def test_null_anywhere_in_a_schema_is_fine(target, admin_route):
    project, admin, user, client = target
    schema = {"type": "object", "default": None, "properties": {
        "n": {"type": ["number", "null"], "default": None, "examples": [None, 1]},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}}},
        "$defs": {"tag": {"type": "string", "default": None}}}
    caller = admin if admin_route else project.server
    prefix = f"/admin/v1/projects/{project.id}" if admin_route else "/v1"
    response = caller.put(f"{prefix}/collections/nullable", json={"schema": schema})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["schema"] == schema
    created = project.server.post("/v1/collections/nullable/documents", json={"n": None, "tags": ["a"]})
    assert created.status_code == 201, created.get_json()
    assert_error(project.server.post("/v1/collections/nullable/documents", json={"tags": [1]}), 400)


def test_deep_and_huge_schemas_are_bounded(target):
    project, admin, user, client = target
    deep = {"type": "object"}
    node = deep
    for _ in range(100):
        node["properties"] = {"a": {"type": "object"}}
        node = node["properties"]["a"]
    assert_error(project.server.put("/v1/collections/deep", json={"schema": deep}), 400)
    huge = {"type": "object", "properties": {f"f{i}": {"type": "string", "description": "x" * 100}
                                             for i in range(1000)}}
    assert_error(project.server.put("/v1/collections/huge", json={"schema": huge}), 400, 413)


@pytest.mark.parametrize("filter_text", [
    '{"n": NaN}', '{"n": 1e400}', '{"n": %d}' % 2 ** 63, '{"n": {"$gt": %d}}' % (-2 ** 63 - 1),
    '{"n": %d}' % 2 ** 64, '{"n": 1, "n": 2}', '{"n": "\\udc00"}', '{"n": ' + "[" * 100 + "]" * 100 + "}",
])
def test_json_query_parameters_are_parsed_strictly(target, filter_text):
    project, admin, user, client = target
    for path in ("/v1/collections/notes/documents", "/v1/collections/notes/aggregate"):
        response = project.server.get(path, query_string={"filter": filter_text})
        body = assert_error(response, 400)
        assert "filter" in body["message"], body


def test_the_int64_range_is_accepted_whole(target):
    project, admin, user, client = target
    values = {"max": INT64_MAX, "min": -2 ** 63, "big_double": 1.5e300, "tiny": -5e-324}
    created = project.server.post("/v1/collections/notes/documents", json=values)
    assert created.status_code == 201, created.get_json()
    doc_id = created.get_json()["_id"]
    stored = project.server.get(f"/v1/collections/notes/documents/{doc_id}").get_json()
    assert {k: stored[k] for k in values} == values
    found = project.server.get("/v1/collections/notes/documents",
                               query_string={"filter": '{"max": %d}' % INT64_MAX}).get_json()["items"]
    assert [d["_id"] for d in found] == [doc_id]
    response = project.server.patch(f"/v1/collections/notes/documents/{doc_id}",
                                    data='{"$inc": {"n": %d}}' % 2 ** 63, content_type="application/json")
    body = assert_error(response, 400)
    assert "range" in body["message"] and "$inc.n" in body["message"]


def test_batch_items_and_signup_data_are_range_checked(target):
    project, admin, user, client = target
    batch = '{"operations": [{"op": "create", "collection": "notes", "document": {"n": %d}}]}' % 2 ** 63
    body = assert_error(project.server.post("/v1/batch", data=batch, content_type="application/json"), 400)
    assert "operations[0].document.n" in body["message"]
    signup = '{"email": "big@example.com", "password": "correct horse battery", "data": {"n": 1e400}}'
    assert_error(project.client.post("/v1/auth/signup", data=signup, content_type="application/json"), 400)
    assert project.client.post("/v1/auth/login", json={"email": "big@example.com",
                                                        "password": "correct horse battery"}).status_code == 401


def test_the_number_range_example_in_the_docs_is_true(target):
    from pathlib import Path

    project, admin, user, client = target
    docs = Path(__file__).resolve().parents[2] / "docs" / "data-api.md"
    section = docs.read_text().split("## JSON and numbers", 1)[1].split("\n## ", 1)[0]
    example = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    response = project.server.post("/v1/collections/notes/documents", data='{"stats": {"views": %d}}' % 2 ** 63,
                                   content_type="application/json")
    assert response.get_json() == example


@pytest.mark.parametrize("text, refused", [
    ('{"a" : 1, "b": {"a": 1, "a"\t: 2}}', True),       # duplicates with blanks before the colon
    ('{"a\\\\": 1, "a\\\\": 2}', True),                   # duplicate keys that end in an escaped backslash
    ('{"a": ":x", "b": "\\":", "c": "10:30:00"}', False),  # strings that look like key endings
    ('{"a": 1.5e300, "b": -9223372036854775808}', False),
    ('{"a": 9223372036854775807.5}', False),              # a double, however large, is a double
    ('[%d]' % 2 ** 64, True),
    ('%d' % -2 ** 63, False),
    ('{"a": "\\ud83d\\ude00"}', False),                   # a surrogate pair is one character
])
def test_the_parser_finds_every_duplicate_and_every_widened_integer(text, refused):
    from baas.errors import Invalid
    from baas.strictjson import loads

    if refused:
        with pytest.raises(Invalid):
            loads(text)
    else:
        assert loads(text) == json.loads(text)
