"""Single documents: create/read/replace/patch/delete, system fields, names, ETags, schemas, dates, hooks."""
import re
from datetime import datetime

import pytest

from baas.documents.definitions import storage_name
from baas.errors import Rejected
from baas.plugins.hookspecs import hookimpl


def _create(caller, collection="notes", **fields):
    response = caller.post(f"/v1/collections/{collection}/documents", json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_returns_201_location_etag_and_system_fields(project):
    response = project.server.post("/v1/collections/notes/documents", json={"text": "hello", "n": 1})
    assert response.status_code == 201
    doc = response.get_json()
    assert doc["text"] == "hello" and doc["n"] == 1
    assert set(doc) >= {"_id", "_created", "_updated", "_owner", "_rev"}
    assert doc["_owner"] is None
    assert doc["_created"] == doc["_updated"] and doc["_created"].endswith("Z")
    assert response.headers["Location"] == f"/v1/collections/notes/documents/{doc['_id']}"
    assert response.headers["ETag"] == f'"{doc["_rev"]}"'
    fetched = project.server.get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.get_json() == doc
    assert fetched.headers["ETag"] == response.headers["ETag"]
    assert project.server.get(response.headers["Location"],
                              headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    for tags in (f'"other", {response.headers["ETag"]}', f'W/{response.headers["ETag"]}', "*"):
        assert project.server.get(response.headers["Location"], headers={"If-None-Match": tags}).status_code == 304
    assert project.server.get(response.headers["Location"], headers={"If-None-Match": '"other"'}).status_code == 200


def test_client_chosen_id(project):
    doc = _create(project.server, _id="my-id_1", a=1)
    assert doc["_id"] == "my-id_1"
    duplicate = project.server.post("/v1/collections/notes/documents", json={"_id": "my-id_1", "a": 2})
    assert duplicate.status_code == 409
    assert project.server.get("/v1/collections/notes/documents/my-id_1").get_json()["a"] == 1
    for bad in ("has space", "../etc", "a" * 65, "", 5, {"$gt": ""}):
        response = project.server.post("/v1/collections/notes/documents", json={"_id": bad})
        assert response.status_code == 400, bad


@pytest.mark.parametrize("body", [
    {"_created": "2000-01-01T00:00:00Z"},
    {"_updated": "2000-01-01T00:00:00Z"},
    {"_rev": "abc"},
    {"_secret": 1},
    {"$set": {"a": 1}},
    {"a.b": 1},
    {"nested": {"$where": "1"}},
    {"nested": {"a.b": 1}},
    {"list": [{"$gt": 1}]},
    {"": 1},
])
def test_bad_fields_are_400_and_nothing_is_written(project, body):
    response = project.server.post("/v1/collections/notes/documents", json=body)
    assert response.status_code == 400, response.get_json()
    assert project.server.get("/v1/collections/notes/documents").get_json()["items"] == []


def test_client_cannot_set_owner_but_server_can(admin, client, make_user):
    from baas.testing import create_project

    project = create_project(admin, client, settings={"open_new_collections": True})
    user = make_user(project)
    response = user.post("/v1/collections/notes/documents", json={"_owner": "someone-else", "t": 1})
    assert response.status_code == 400
    assert _create(user, t=1)["_owner"] == user.user_id
    assert _create(project.server, _owner=user.user_id, t=2)["_owner"] == user.user_id


def test_body_must_be_a_json_object(project):
    assert project.server.post("/v1/collections/notes/documents", json=[1, 2]).status_code == 400
    response = project.server.post("/v1/collections/notes/documents", data="{nope",
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert project.server.post("/v1/collections/notes/documents", data="a=1",
                               headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 415


def test_replace_keeps_system_fields(project):
    doc = _create(project.server, a=1, b=2)
    response = project.server.put(f"/v1/collections/notes/documents/{doc['_id']}", json={"a": 5})
    assert response.status_code == 200
    replaced = response.get_json()
    assert replaced["a"] == 5 and "b" not in replaced
    assert replaced["_id"] == doc["_id"] and replaced["_created"] == doc["_created"]
    assert replaced["_rev"] != doc["_rev"]
    assert response.headers["ETag"] == f'"{replaced["_rev"]}"'
    assert project.server.put(f"/v1/collections/notes/documents/{doc['_id']}",
                              json={"_id": "other", "a": 1}).status_code == 400
    assert project.server.put(f"/v1/collections/notes/documents/{doc['_id']}",
                              json={"_created": "2000-01-01T00:00:00Z"}).status_code == 400
    assert project.server.put("/v1/collections/notes/documents/missing", json={"a": 1}).status_code == 404


def test_patch_merges_fields(project):
    doc = _create(project.server, a=1, b={"x": 1})
    patched = project.server.patch(f"/v1/collections/notes/documents/{doc['_id']}", json={"b": {"y": 2}, "c": None})
    assert patched.status_code == 200
    assert {k: v for k, v in patched.get_json().items() if not k.startswith("_")} == {"a": 1, "b": {"y": 2},
                                                                                       "c": None}


def test_patch_operators(project):
    doc = _create(project.server, n=1, tags=["a"], nested={"count": 1}, gone=True, bag=[1, 2, 2, 3])
    path = f"/v1/collections/notes/documents/{doc['_id']}"
    body = {"$set": {"nested.label": "x", "title": "t"}, "$unset": {"gone": ""}, "$inc": {"n": 2, "nested.count": 5},
            "$push": {"tags": "b"}, "$addToSet": {"set": {"$each": ["p", "p", "q"]}}, "$pull": {"bag": 2}}
    response = project.server.patch(path, json=body)
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert result["n"] == 3
    assert result["nested"] == {"count": 6, "label": "x"}
    assert result["title"] == "t"
    assert "gone" not in result
    assert result["tags"] == ["a", "b"]
    assert result["set"] == ["p", "q"]
    assert result["bag"] == [1, 3]
    again = project.server.patch(path, json={"$addToSet": {"tags": "a"}, "$push": {"bag": {"$each": [7, 7]}},
                                             "$pull": {"set": {"$in": ["p", "zzz"]}}}).get_json()
    assert again["tags"] == ["a", "b"] and again["bag"] == [1, 3, 7, 7] and again["set"] == ["q"]
    assert project.server.get(path).get_json() == again


@pytest.mark.parametrize("body, fragment", [
    ({"$rename": {"a": "b"}}, "$rename"),
    ({"$set": {"a": {"$gt": 1}}}, "$gt"),
    ({"$set": {"_owner": "me"}}, "system field"),
    ({"$set": {"_created": "x"}}, "system field"),
    ({"$inc": {"n": "1"}}, "number"),
    ({"$inc": {"text": 1}}, "number"),
    ({"$push": {"text": 1}}, "list"),
    ({"$set": {"a": 1}, "b": 2}, "not both"),
    ({"$set": {"a": 1}, "$unset": {"a": ""}}, "conflict"),
    ({"$set": {"a": 1, "a.b": 2}}, "conflict"),
    ({"$set": {"$where": 1}}, "$where"),
    ({"$set": {"text.deep": 1}}, "not an object"),
    ({}, "JSON object"),
])
def test_bad_patches_are_400_and_change_nothing(project, body, fragment):
    doc = _create(project.server, n=1, text="x")
    path = f"/v1/collections/notes/documents/{doc['_id']}"
    response = project.server.patch(path, json=body)
    assert response.status_code == 400, response.get_json()
    assert fragment.lower() in response.get_json()["message"].lower()
    assert project.server.get(path).get_json() == doc


def test_if_match_conflicts(project):
    doc = _create(project.server, n=1)
    path = f"/v1/collections/notes/documents/{doc['_id']}"
    etag = project.server.get(path).headers["ETag"]
    first = project.server.patch(path, json={"$inc": {"n": 1}}, headers={"If-Match": etag})
    assert first.status_code == 200
    # A second writer holding the old ETag is refused on every kind of write.
    for method, body in (("PATCH", {"n": 100}), ("PUT", {"n": 100}), ("DELETE", None)):
        response = project.server.open(method, path, json=body, headers={"If-Match": etag})
        assert response.status_code == 412, method
        assert response.get_json()["code"] == 412
    assert project.server.get(path).get_json()["n"] == 2
    new_etag = first.headers["ETag"]
    assert project.server.put(path, json={"n": 7}, headers={"If-Match": new_etag}).status_code == 200
    assert project.server.patch(path, json={"n": 8}, headers={"If-Match": "*"}).status_code == 200
    current = project.server.get(path).headers["ETag"]
    assert project.server.delete(path, headers={"If-Match": f"W/{current}"}).status_code == 204
    assert project.server.get(path).status_code == 404
    assert project.server.delete(path).status_code == 404


def test_delete(project):
    doc = _create(project.server, n=1)
    path = f"/v1/collections/notes/documents/{doc['_id']}"
    response = project.server.delete(path)
    assert response.status_code == 204
    assert project.server.get(path).status_code == 404


SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 50},
        "score": {"type": "integer", "minimum": 0},
        "published": {"type": "string", "format": "date-time"},
        "birthday": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title"],
    "additionalProperties": False,
}


def test_schema_validation_lists_errors(project):
    assert project.server.put("/v1/collections/posts", json={"schema": SCHEMA}).status_code == 201
    response = project.server.post("/v1/collections/posts/documents",
                                   json={"score": -1, "tags": [1], "extra": True, "published": "yesterday"})
    assert response.status_code == 400
    body = response.get_json()
    assert "schema" in body["message"]
    errors = body["errors"]
    assert any("'title' is a required property" in m for m in errors["(document)"])
    assert any("Additional properties" in m for m in errors["(document)"])
    assert "score" in errors and "tags.0" in errors and "published" in errors
    assert project.server.get("/v1/collections/posts/documents").get_json()["items"] == []

    good = _create(project.server, "posts", title="ok", score=1)
    path = f"/v1/collections/posts/documents/{good['_id']}"
    assert project.server.patch(path, json={"$inc": {"score": -5}}).status_code == 400
    assert project.server.patch(path, json={"$unset": {"title": ""}}).status_code == 400
    assert project.server.put(path, json={"score": 3}).status_code == 400
    assert project.server.get(path).get_json()["score"] == 1


def test_dates_are_stored_as_dates_and_returned_as_iso(app, project):
    assert project.server.put("/v1/collections/posts", json={"schema": SCHEMA}).status_code == 201
    doc = _create(project.server, "posts", title="a", published="2024-05-01T12:30:00+02:00", birthday="1990-02-03")
    # One format for every date in every response: UTC, milliseconds, Z.
    assert doc["published"] == "2024-05-01T10:30:00.000Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["_created"]), doc["_created"]
    assert doc["birthday"] == "1990-02-03"
    stored = app.extensions["baas"].mongo.project_db(project.id)[storage_name("posts")].find_one({"_id": doc["_id"]})
    assert isinstance(stored["published"], datetime) and isinstance(stored["birthday"], datetime)
    assert isinstance(stored["_created"], datetime)
    _create(project.server, "posts", title="b", published="2024-06-01T00:00:00Z")
    path = f"/v1/collections/posts/documents/{doc['_id']}"
    assert project.server.get(path).get_json()["published"] == "2024-05-01T10:30:00.000Z"

    def titles(query):
        response = project.server.get("/v1/collections/posts/documents", query_string={"filter": query})
        assert response.status_code == 200, response.get_json()
        return sorted(d["title"] for d in response.get_json()["items"])

    assert titles('{"published": {"$gte": "2024-05-15T00:00:00Z"}}') == ["b"]
    assert titles('{"published": {"$lt": "2024-05-15"}}') == ["a"]
    assert titles('{"published": "2024-05-01T10:30:00Z"}') == ["a"]
    assert titles('{"birthday": {"$in": ["1990-02-03"]}}') == ["a"]
    assert titles('{"_created": {"$gte": "2000-01-01T00:00:00Z"}}') == ["a", "b"]
    bad = project.server.get("/v1/collections/posts/documents", query_string={"filter": '{"published": "soon"}'})
    assert bad.status_code == 400
    # PATCH keeps dates as dates and re-validates the whole document.
    patched = project.server.patch(path, json={"score": 4}).get_json()
    assert patched["published"] == "2024-05-01T10:30:00.000Z" and patched["birthday"] == "1990-02-03"
    assert isinstance(app.extensions["baas"].mongo.project_db(project.id)[storage_name("posts")].find_one(
        {"_id": doc["_id"]})["published"], datetime)


class _Guard:
    def __init__(self):
        self.after = []

    @hookimpl
    def baas_before_document_write(self, principal, collection, action, document, previous):
        if document is not None and document.get("forbidden"):
            raise Rejected("No forbidden documents.")
        if document is not None and action == "create":
            document["stamped"] = True

    @hookimpl
    def baas_after_document_write(self, principal, collection, action, document, previous):
        self.after.append((collection, action, (document or previous)["_id"]))


def test_plugin_hooks_see_and_can_refuse_writes(app, project):
    guard = _Guard()
    app.extensions["baas"].hooks.register(guard, name="guard")
    response = project.server.post("/v1/collections/notes/documents", json={"forbidden": True})
    assert response.status_code == 422
    assert project.server.get("/v1/collections/notes/documents").get_json()["items"] == []
    doc = _create(project.server, a=1)
    assert doc["stamped"] is True
    path = f"/v1/collections/notes/documents/{doc['_id']}"
    assert project.server.patch(path, json={"forbidden": True}).status_code == 422
    assert project.server.patch(path, json={"a": 2}).status_code == 200
    assert project.server.delete(path).status_code == 204
    assert guard.after == [("notes", "create", doc["_id"]), ("notes", "update", doc["_id"]),
                           ("notes", "delete", doc["_id"])]


def test_concurrent_increments_are_never_lost(docs, principals):
    import threading

    from baas.errors import Conflict

    server = principals.server()
    doc = docs.create(server, "counters", {"n": 0})
    successes = []

    def bump():
        for _ in range(10):
            try:
                docs.update(server, "counters", doc["_id"], {"$inc": {"n": 1}})
                successes.append(1)
            except Conflict:
                pass

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(successes) > 0
    assert docs.get(server, "counters", doc["_id"])["n"] == len(successes)
