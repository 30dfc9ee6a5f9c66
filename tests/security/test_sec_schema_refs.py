"""A collection's JSON Schema can never make the server read files or fetch URLs."""
import socket

import pytest


@pytest.mark.parametrize("ref", ["file:///etc/hostname", "http://127.0.0.1:9/x.json", "other.json",
                                 "https://example.com/schema#/a"])
@pytest.mark.parametrize("keyword", ["$ref", "$dynamicRef"])
def test_non_local_references_are_refused(project, ref, keyword):
    schema = {"type": "object", "properties": {"a": {"items": {keyword: ref}}}}
    response = project.server.put("/v1/collections/posts", json={"schema": schema})
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == 400 and keyword in body["message"] and "/properties/a/items" in body["message"]
    assert project.server.get("/v1/collections/posts").status_code == 404, "nothing was defined"


def test_secret_file_is_never_read_through_a_schema(project, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"enum": ["TOP-SECRET-VALUE"]}')
    schema = {"type": "object", "properties": {"a": {"$ref": secret.as_uri()}}}
    assert project.server.put("/v1/collections/posts", json={"schema": schema}).status_code == 400
    created = project.server.post("/v1/collections/posts/documents", json={"a": "x"})
    assert "TOP-SECRET-VALUE" not in created.get_data(as_text=True)


def test_local_references_work_and_a_dangling_one_is_a_clear_400(project):
    schema = {"type": "object", "$defs": {"score": {"type": "integer", "minimum": 0}},
              "properties": {"score": {"$ref": "#/$defs/score"}}}
    assert project.server.put("/v1/collections/games", json={"schema": schema}).status_code in (200, 201)
    assert project.server.post("/v1/collections/games/documents", json={"score": 3}).status_code == 201
    invalid = project.server.post("/v1/collections/games/documents", json={"score": -1})
    assert invalid.status_code == 400 and "score" in invalid.get_json()["errors"]

    dangling = {**schema, "properties": {"bad": {"$ref": "#/$defs/missing"}}}
    refused = project.server.put("/v1/collections/games", json={"schema": dangling})
    assert refused.status_code == 400
    assert "#/$defs/missing" in refused.get_json()["message"]


def test_no_outbound_connection_is_attempted(project):
    # A listener that records connections: a schema naming it must be refused before anything connects.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        schema = {"type": "object", "properties": {"a": {"$ref": f"http://127.0.0.1:{port}/s.json"}}}
        assert project.server.put("/v1/collections/posts", json={"schema": schema}).status_code == 400
        project.server.post("/v1/collections/posts/documents", json={"a": 1})
        with pytest.raises(socket.timeout):
            listener.accept()


@pytest.mark.parametrize("schema", [
    {"type": "object", "$ref": "#"},
    {"type": "object", "$defs": {"a": {"$ref": "#/$defs/a"}}, "properties": {"x": {"$ref": "#/$defs/a"}}},
    {"type": "object", "$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}},
     "properties": {"x": {"$ref": "#/$defs/a"}}},
    {"type": "object", "properties": {"x": {"not": {"$ref": "#/properties/x"}}}},
])
@pytest.mark.parametrize("admin_route", [False, True])
def test_reference_cycles_are_refused_at_definition_time(project, admin, schema, admin_route):
    caller, prefix = (admin, f"/admin/v1/projects/{project.id}") if admin_route else (project.server, "/v1")
    response = caller.put(f"{prefix}/collections/loops", json={"schema": schema})
    assert response.status_code == 400, response.get_json()
    assert "$ref cycle" in response.get_json()["message"] or "itself" in response.get_json()["message"]
    assert project.server.get("/v1/collections/loops").status_code == 404
    # a recursive schema that steps into the document on each turn is fine
    tree = {"type": "object", "properties": {"name": {"type": "string"}, "children": {
        "type": "array", "items": {"$ref": "#"}}}}
    assert caller.put(f"{prefix}/collections/trees", json={"schema": tree}).status_code in (200, 201)
    created = project.server.post("/v1/collections/trees/documents",
                                  json={"name": "a", "children": [{"name": "b", "children": []}]})
    assert created.status_code == 201, created.get_json()
    assert project.server.post("/v1/collections/trees/documents",
                               json={"name": "a", "children": [{"name": 1}]}).status_code == 400
