"""The batch endpoint with hostile operations."""
import pytest

from security_helpers import assert_error


def test_batch_of_too_many_operations_writes_nothing(project, open_collection):
    open_collection()
    operations = [{"op": "create", "collection": "notes", "document": {"i": i}} for i in range(101)]
    assert_error(project.server.post("/v1/batch", json={"operations": operations}), 400)
    assert project.server.get("/v1/collections/notes/documents").get_json()["items"] == []


@pytest.mark.parametrize("op", [{"op": "$where"}, {"op": "create"}, {"op": "create", "collection": "notes",
                                                                     "document": "x"},
                                {"op": "update", "collection": "notes", "id": {"$ne": None}, "document": {"x": 1}},
                                {"op": "delete", "collection": "notes", "id": {"$ne": None}},
                                {"op": "create", "collection": {"$ne": None}, "document": {}},
                                {"op": "create", "collection": "notes", "document": {"$set": {"a": 1}}},
                                "notanobject", None, []])
def test_batch_bad_operations_never_touch_other_documents(project, open_collection, op):
    open_collection()
    keep = project.server.post("/v1/collections/notes/documents", json={"k": 1}).get_json()["_id"]
    response = project.client.post("/v1/batch", json={"operations": [op]})
    if response.status_code == 200:
        result = response.get_json()["results"][0]
        assert result["status"] >= 400, result
        assert {"code", "message"} <= set(result.get("error", result)), result
    else:
        assert_error(response, 400)
    items = project.server.get("/v1/collections/notes/documents").get_json()["items"]
    assert [i["_id"] for i in items] == [keep] and items[0]["k"] == 1
