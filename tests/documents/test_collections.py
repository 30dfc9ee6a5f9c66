"""Collection definitions: admin and server-key APIs, names, schemas, indexes, rules, defaults, isolation."""
import pytest

from baas.testing import create_project

POSTS = {
    "schema": {"type": "object", "properties": {"title": {"type": "string"}, "score": {"type": "integer"}},
               "required": ["title"]},
    "indexes": [{"name": "by_score", "keys": {"score": -1, "title": 1}}],
    "rules": {"list": "public", "read": "public", "create": "authenticated", "update": "owner", "delete": "owner",
              "aggregate": "public"},
}


def test_define_with_server_key_then_read_list_delete(project):
    response = project.server.put("/v1/collections/posts", json=POSTS)
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "posts"
    assert body["rules"] == POSTS["rules"]
    assert body["indexes"] == [{"name": "by_score", "keys": {"score": -1, "title": 1}, "unique": False,
                                "expire_after_seconds": None}]
    assert body["schema"] == POSTS["schema"]

    again = project.server.put("/v1/collections/posts", json={"rules": {"read": "owner"}})
    assert again.status_code == 200
    assert again.get_json()["rules"]["read"] == "owner"
    assert again.get_json()["rules"]["list"] == "public"          # omitted actions keep their rule
    assert again.get_json()["schema"] == POSTS["schema"]          # omitted keys keep their value

    assert project.server.get("/v1/collections/posts").get_json()["rules"]["read"] == "owner"
    assert [c["name"] for c in project.server.get("/v1/collections").get_json()] == ["posts"]

    project.server.post("/v1/collections/posts/documents", json={"title": "x"})
    assert project.server.delete("/v1/collections/posts").status_code == 204
    assert project.server.get("/v1/collections/posts").status_code == 404
    assert project.server.get("/v1/collections/posts/documents").get_json()["items"] == []
    assert project.server.delete("/v1/collections/posts").status_code == 404


def test_admin_api_defines_collections(admin, project):
    path = f"/admin/v1/projects/{project.id}/collections/posts"
    assert admin.put(path, json=POSTS).status_code == 201
    assert admin.get(path).get_json()["rules"] == POSTS["rules"]
    assert [c["name"] for c in admin.get(f"/admin/v1/projects/{project.id}/collections").get_json()] == ["posts"]
    assert project.server.get("/v1/collections/posts").status_code == 200
    assert admin.put("/admin/v1/projects/no-such-project/collections/posts", json=POSTS).status_code == 404
    assert admin.delete(path).status_code == 204
    assert admin.get(path).status_code == 404


def test_client_keys_cannot_define_or_list_collections(project, make_user):
    user = make_user(project)
    for caller in (project.client, user):
        assert caller.put("/v1/collections/posts", json=POSTS).status_code == 403
        assert caller.get("/v1/collections").status_code == 403
        assert caller.get("/v1/collections/posts").status_code == 403
        assert caller.delete("/v1/collections/posts").status_code == 403


def test_server_key_without_collections_scope_is_refused(admin, project):
    key = admin.post(f"/admin/v1/projects/{project.id}/keys",
                     json={"kind": "server", "scopes": ["documents:read", "documents:write"]}).get_json()["key"]
    limited = project.server.with_headers(**{"X-API-Key": key})
    response = limited.put("/v1/collections/posts", json=POSTS)
    assert response.status_code == 403
    assert "collections:admin" in response.get_json()["message"]
    assert limited.post("/v1/collections/posts/documents", json={"title": "ok"}).status_code == 201


@pytest.mark.parametrize("name", ["_users", "_collections", "1abc", "a-b", "a.b", "a" * 65, "a b", "ünï"])
def test_bad_collection_names(project, name):
    for response in (project.server.put(f"/v1/collections/{name}", json=POSTS),
                     project.server.post(f"/v1/collections/{name}/documents", json={"a": 1}),
                     project.server.get(f"/v1/collections/{name}/documents")):
        assert response.status_code == 400, (name, response.get_json())
        assert response.get_json()["code"] == 400


def test_reserved_system_collections_are_unreachable(project, make_user):
    user = make_user(project)
    assert project.server.get("/v1/collections/_users/documents").status_code == 400
    assert user.get("/v1/collections/_sessions/documents").status_code == 400
    response = project.server.post("/v1/batch", json={"operations": [
        {"op": "create", "collection": "_users", "document": {"email": "x@y.z"}}]})
    assert response.get_json()["results"][0]["status"] == 400


@pytest.mark.parametrize("body, fragment", [
    ({"schema": {"type": "object", "properties": {"a": {"type": "nonsense"}}}}, "not a valid JSON Schema"),
    ({"schema": {"type": "array"}}, "type"),
    ({"schema": {"type": "object", "properties": {"a": {"type": "string", "x-ref": "_users"}}}}, "x-ref"),
    ({"indexes": [{"name": "1bad", "keys": {"a": 1}}]}, "index name"),
    ({"indexes": [{"name": "sys_owner", "keys": {"a": 1}}]}, "sys_"),
    ({"indexes": [{"name": "a", "keys": {"a": 2}}]}, "direction"),
    ({"indexes": [{"name": "a", "keys": {"$where": 1}}]}, "$where"),
    ({"indexes": [{"name": "a", "keys": {"a": 1}}, {"name": "a", "keys": {"b": 1}}]}, "Two indexes"),
    ({"indexes": [{"name": "t", "keys": {"a": 1, "b": 1}, "expire_after_seconds": 5}]}, "TTL"),
    ({"rules": {"read": "everyone"}}, "Unknown rule"),
    ({"rules": {"destroy": "public"}}, "Unknown action"),
    ({"rules": {"read": {"owner": {"$where": "1"}}}}, "$where"),
    ({"rules": {"read": {"members": "@user.password"}}}, "Unknown variable"),
    ({"rules": {"read": [["public"]]}}, "nested"),
])
def test_bad_definitions_are_400_and_change_nothing(project, body, fragment):
    response = project.server.put("/v1/collections/posts", json=body)
    assert response.status_code == 400, response.get_json()
    assert fragment in response.get_json()["message"]
    assert project.server.get("/v1/collections/posts").status_code == 404


def test_unknown_definition_keys_are_refused(project):
    response = project.server.put("/v1/collections/posts", json={"shema": {}})
    assert response.status_code in (400, 422)
    assert project.server.get("/v1/collections/posts").status_code == 404


def test_unique_and_ttl_indexes(app, project):
    assert project.server.put("/v1/collections/people", json={
        "indexes": [{"name": "email_unique", "keys": {"email": 1}, "unique": True}]}).status_code == 201
    assert project.server.post("/v1/collections/people/documents", json={"email": "a@x"}).status_code == 201
    response = project.server.post("/v1/collections/people/documents", json={"email": "a@x"})
    assert response.status_code == 409

    # A unique index over existing duplicates cannot be built: 409, and the definition is unchanged.
    project.server.post("/v1/collections/people/documents", json={"email": "b@x", "city": "Oslo"})
    project.server.post("/v1/collections/people/documents", json={"email": "c@x", "city": "Oslo"})
    response = project.server.put("/v1/collections/people", json={"indexes": [
        {"name": "email_unique", "keys": {"email": 1}, "unique": True},
        {"name": "city_unique", "keys": {"city": 1}, "unique": True}]})
    assert response.status_code == 409
    assert [i["name"] for i in project.server.get("/v1/collections/people").get_json()["indexes"]] == \
        ["email_unique"]

    assert project.server.put("/v1/collections/people", json={"indexes": []}).status_code == 200
    assert project.server.get("/v1/collections/people").get_json()["indexes"] == []


def test_ttl_index_hides_expired_documents(project):
    definition = {"schema": {"type": "object", "properties": {"expires": {"type": "string", "format": "date-time"}}},
                  "indexes": [{"name": "expiry", "keys": {"expires": 1}, "expire_after_seconds": 0}]}
    assert project.server.put("/v1/collections/sessions", json=definition).status_code == 201
    old = project.server.post("/v1/collections/sessions/documents",
                              json={"expires": "2000-01-01T00:00:00Z"}).get_json()
    fresh = project.server.post("/v1/collections/sessions/documents",
                                json={"expires": "2999-01-01T00:00:00Z"}).get_json()
    listed = project.server.get("/v1/collections/sessions/documents").get_json()["items"]
    assert [d["_id"] for d in listed] == [fresh["_id"]]
    assert project.server.get(f"/v1/collections/sessions/documents/{old['_id']}").status_code == 404


def test_secure_by_default(project, make_user):
    """A collection nobody defined is for server keys only."""
    user = make_user(project)
    for caller in (project.client, user):
        response = caller.post("/v1/collections/notes/documents", json={"text": "hi"})
        assert response.status_code == 403
        assert "server key" in response.get_json()["message"]
        assert caller.get("/v1/collections/notes/documents").status_code == 403
    # The refused writes did not define the collection.
    assert project.server.get("/v1/collections/notes").status_code == 404
    created = project.server.post("/v1/collections/notes/documents", json={"text": "hi"})
    assert created.status_code == 201
    definition = project.server.get("/v1/collections/notes").get_json()
    assert set(definition["rules"].values()) == {"none"}
    assert user.get(f"/v1/collections/notes/documents/{created.get_json()['_id']}").status_code == 403


def test_open_new_collections_setting(admin, client, make_user):
    project = create_project(admin, client, settings={"open_new_collections": True})
    alice, bob = make_user(project), make_user(project)
    assert project.client.post("/v1/collections/notes/documents", json={"t": 1}).status_code == 403
    created = alice.post("/v1/collections/notes/documents", json={"t": 1})
    assert created.status_code == 201
    doc = created.get_json()
    assert doc["_owner"] == alice.user_id
    assert bob.get(f"/v1/collections/notes/documents/{doc['_id']}").status_code == 200
    assert project.client.get(f"/v1/collections/notes/documents/{doc['_id']}").status_code == 403
    assert bob.patch(f"/v1/collections/notes/documents/{doc['_id']}", json={"t": 2}).status_code == 403
    assert alice.patch(f"/v1/collections/notes/documents/{doc['_id']}", json={"t": 2}).status_code == 200
    # The rules were frozen into the definition at the first write.
    rules = project.server.get("/v1/collections/notes").get_json()["rules"]
    assert rules == {"list": "authenticated", "read": "authenticated", "aggregate": "authenticated",
                     "create": "authenticated", "update": "owner", "delete": "owner"}


def test_strict_collections_setting(admin, client):
    project = create_project(admin, client, settings={"strict_collections": True})
    response = project.server.post("/v1/collections/notes/documents", json={"t": 1})
    assert response.status_code == 404
    assert "admin" in response.get_json()["message"]
    assert project.server.get("/v1/collections/notes/documents").status_code == 404
    assert project.server.put("/v1/collections/notes", json={}).status_code == 201
    assert project.server.post("/v1/collections/notes/documents", json={"t": 1}).status_code == 201


def test_projects_are_isolated(admin, client, project):
    other = create_project(admin, client)
    doc = project.server.post("/v1/collections/notes/documents", json={"secret": 1}).get_json()
    project.server.put("/v1/collections/notes", json={"rules": {"read": "public", "list": "public"}})
    assert other.server.get(f"/v1/collections/notes/documents/{doc['_id']}").status_code == 404
    assert other.server.get("/v1/collections/notes/documents").get_json()["items"] == []
    assert other.client.get(f"/v1/collections/notes/documents/{doc['_id']}").status_code == 403
    assert other.server.get("/v1/collections/notes").status_code == 404
    assert other.server.delete(f"/v1/collections/notes/documents/{doc['_id']}").status_code == 404
    assert project.client.get(f"/v1/collections/notes/documents/{doc['_id']}").status_code == 200
