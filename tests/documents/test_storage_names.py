"""Every collection name the API accepts works on every backend, and no database text reaches a client."""
from baas.documents.definitions import storage_name
from baas.errors import Rejected
from baas.plugins.hookspecs import hookimpl

# Words SQL backends reserve (the embedded database turns collection names into table names).
SQL_KEYWORDS = ["select", "order", "group", "where", "null", "from", "values", "table", "index", "insert",
                "delete", "update", "create", "drop", "limit", "join", "union", "and", "or", "not", "default",
                "check", "primary", "references", "transaction", "commit", "SELECT", "Order", "having", "distinct"]
# What the embedded database's SQL errors say; none of it may reach a client.
LEAKS = ("syntax", "sqlite", "near \"", "UNIQUE constraint", "E11000", "json_extract", "idx_")


def _clean(response) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text
    assert not any(leak in text for leak in LEAKS), text


def test_sql_keyword_collections_work_for_every_operation(project):
    server = project.server
    for name in SQL_KEYWORDS:
        base = f"/v1/collections/{name}"
        created = server.post(f"{base}/documents", json={"_id": "d1", "n": 1, "group": "g", "order": 2})
        assert created.status_code == 201, (name, created.get_json())
        got = server.get(f"{base}/documents/d1")
        assert got.status_code == 200 and got.get_json()["n"] == 1, name
        patched = server.patch(f"{base}/documents/d1", json={"$inc": {"n": 1}})
        assert patched.status_code == 200 and patched.get_json()["n"] == 2, (name, patched.get_json())
        replaced = server.put(f"{base}/documents/d1", json={"n": 3, "group": "g"})
        assert replaced.status_code == 200, (name, replaced.get_json())
        listed = server.get(f"{base}/documents", query_string={"filter": '{"group": "g"}', "sort": "-n",
                                                               "count": "true"})
        assert listed.status_code == 200 and listed.get_json()["total"] == 1, (name, listed.get_json())
        aggregated = server.get(f"{base}/aggregate", query_string={"group_by": "group", "metrics": "count,sum:n"})
        assert aggregated.get_json() == {"groups": [{"key": "g", "count": 1, "sum:n": 3}]}, name
        defined = server.put(base, json={"indexes": [{"name": "by_group", "keys": {"group": 1, "order": -1}},
                                                     {"name": "select", "keys": {"n": 1}, "unique": True}]})
        assert defined.status_code in (200, 201), (name, defined.get_json())
        batch = server.post("/v1/batch", json={"operations": [
            {"op": "create", "collection": name, "document": {"_id": "d2", "n": 4}},
            {"op": "update", "collection": name, "id": "d2", "document": {"$inc": {"n": 1}}},
            {"op": "create", "collection": name, "document": {"n": 5}},   # the unique index refuses it
            {"op": "delete", "collection": name, "id": "d1"}]})
        assert [r["status"] for r in batch.get_json()["results"]] == [201, 200, 409, 204], (name, batch.get_json())
        _clean(batch)
        assert server.delete(base).status_code == 204, name
        assert server.get(f"{base}/documents/d2").status_code == 404, name
        assert server.delete(base).status_code == 404, name


def test_collections_are_stored_under_names_no_backend_can_misread(app, project):
    project.server.post("/v1/collections/select/documents", json={"_id": "s1"})
    database = app.extensions["baas"].mongo.project_db(project.id)
    names = database.list_collection_names()
    assert storage_name("select") in names and "select" not in names
    assert database[storage_name("select")].find_one({"_id": "s1"}) is not None


def test_database_refusals_are_clean_4xx(project):
    server = project.server
    for value in ("a", "a"):
        server.post("/v1/collections/where/documents", json={"email": value})
    refused = server.put("/v1/collections/where", json={"indexes": [
        {"name": "email", "keys": {"email": 1}, "unique": True}]})
    assert refused.status_code == 409, refused.get_json()
    assert "same values" in refused.get_json()["message"]
    _clean(refused)
    # The index was not kept, so the definition does not claim it.
    assert server.get("/v1/collections/where").get_json()["indexes"] == []
    for query in ({"group_by": "email", "metrics": "sum:email,min:email,max:email,avg:email"},
                  {"metrics": "count", "filter": '{"order": {"$in": [1, "x", null]}}'}):
        _clean(server.get("/v1/collections/where/aggregate", query_string=query))


def test_a_failed_first_write_leaves_no_collection_behind(app, project):
    class Refuse:
        @hookimpl
        def baas_before_document_write(self, collection, action):
            if collection.startswith("refused"):
                raise Rejected("not here")

    app.extensions["baas"].hooks.register(Refuse())
    for name in ("refused", "refused_null"):
        response = project.server.post(f"/v1/collections/{name}/documents", json={"a": 1})
        assert response.status_code == 422, response.get_json()
        assert project.server.get(f"/v1/collections/{name}").status_code == 404
    batch = project.server.post("/v1/batch", json={"operations": [
        {"op": "create", "collection": "refused_batch", "document": {"a": 1}}]})
    assert batch.get_json()["results"][0]["status"] == 422
    listed = project.server.get("/v1/collections").get_json()
    assert not any(item["name"].startswith("refused") for item in listed)
    # A collection defined by a write that succeeded stays.
    assert project.server.post("/v1/collections/kept/documents", json={"a": 1}).status_code == 201
    assert project.server.get("/v1/collections/kept").status_code == 200


def test_a_refused_write_names_no_database_internals():
    from pymongo.errors import WriteError

    from baas.documents.service import write_refused

    refused = write_refused(WriteError('near "values": syntax error', None, {"errmsg": 'near "values": syntax'}))
    assert refused.status == 400 and refused.message == "The database refused to store this document."
    too_large = write_refused(WriteError("BSONObjectTooLarge", 10334, {"errmsg": "object to insert too large"}))
    assert "16 MB" in too_large.message and "BSON" not in too_large.message
