"""Batch writes (per-operation results, not atomic) and grouped aggregates."""
import pytest


def test_batch_runs_in_order_with_per_operation_results(project):
    created = project.server.post("/v1/collections/notes/documents", json={"_id": "keep", "n": 1}).get_json()
    operations = [
        {"op": "create", "collection": "notes", "document": {"_id": "new1", "n": 10}},
        {"op": "update", "collection": "notes", "id": "new1", "document": {"$inc": {"n": 1}}},
        {"op": "create", "collection": "notes", "document": {"_id": "new1"}},             # duplicate: 409
        {"op": "replace", "collection": "notes", "id": "keep", "document": {"n": 2}, "if_match": created["_rev"]},
        {"op": "update", "collection": "notes", "id": "keep", "document": {"n": 3}, "if_match": created["_rev"]},
        {"op": "delete", "collection": "notes", "id": "missing"},
        {"op": "create", "collection": "notes", "document": {"$where": 1}},
        {"op": "explode", "collection": "notes"},
        {"op": "create", "collection": "_users", "document": {}},
        {"action": "delete", "collection": "notes", "id": "new1"},
    ]
    response = project.server.post("/v1/batch", json={"operations": operations})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == [201, 200, 409, 200, 412, 404, 400, 400, 400, 204]
    assert results[0]["document"]["_id"] == "new1"
    assert results[1]["document"]["n"] == 11
    assert results[6]["error"]["code"] == 400 and "$where" in results[6]["error"]["message"]
    # Not atomic: the failures did not undo the successes.
    assert project.server.get("/v1/collections/notes/documents/keep").get_json()["n"] == 2
    assert project.server.get("/v1/collections/notes/documents/new1").status_code == 404


def test_batch_applies_rules_per_operation(project, make_user):
    project.server.put("/v1/collections/notes", json={"rules": {"create": "authenticated", "update": "owner",
                                                                "delete": "owner", "read": "owner"}})
    theirs = project.server.post("/v1/collections/notes/documents", json={"_owner": "someone", "n": 1}).get_json()
    user = make_user(project)
    results = user.post("/v1/batch", json={"operations": [
        {"op": "create", "collection": "notes", "document": {"n": 2}},
        {"op": "delete", "collection": "notes", "id": theirs["_id"]},
        {"op": "create", "collection": "other", "document": {"n": 3}},
    ]}).get_json()["results"]
    assert [r["status"] for r in results] == [201, 404, 403]
    assert results[0]["document"]["_owner"] == user.user_id
    assert project.server.get(f"/v1/collections/notes/documents/{theirs['_id']}").status_code == 200


@pytest.mark.parametrize("body", [
    {"operations": []},
    {"operations": [{"op": "create", "collection": "notes", "document": {}}] * 101},
    {"operations": "all"},
    {"ops": []},
    [],
])
def test_bad_batches_are_400(project, body):
    response = project.server.post("/v1/batch", json=body)
    assert response.status_code == 400
    assert project.server.get("/v1/collections/notes/documents").get_json()["items"] == []


def test_aggregate_groups_and_metrics(project):
    for color, amount in (("red", 1), ("red", 4), ("blue", 10), (None, 5)):
        body = {"amount": amount}
        if color:
            body["color"] = color
        project.server.post("/v1/collections/sales/documents", json=body)
    response = project.server.get("/v1/collections/sales/aggregate", query_string={
        "group_by": "color", "metrics": "count,sum:amount,avg:amount,min:amount,max:amount"})
    assert response.status_code == 200
    groups = {g["key"]: g for g in response.get_json()["groups"]}
    assert groups["red"] == {"key": "red", "count": 2, "sum:amount": 5, "avg:amount": 2.5, "min:amount": 1,
                             "max:amount": 4}
    assert groups["blue"]["count"] == 1 and groups[None]["sum:amount"] == 5
    filtered = project.server.get("/v1/collections/sales/aggregate", query_string={
        "group_by": "color", "filter": '{"amount": {"$gt": 2}}'}).get_json()
    assert {g["key"]: g["count"] for g in filtered["groups"]} == {"red": 1, "blue": 1, None: 1}
    for params, fragment in (({"metrics": "median:amount"}, "median"), ({"metrics": "sum"}, "sum"),
                             ({"metrics": "count:x"}, "count"), ({"group_by": "$where"}, "$where"),
                             ({"metrics": "sum:$x"}, "$x"), ({"filter": '{"$where": "1"}'}, "$where"),
                             ({"metrics": ",".join(["count"] * 11)}, "metrics")):
        bad = project.server.get("/v1/collections/sales/aggregate", query_string=params)
        assert bad.status_code == 400, params
        assert fragment in bad.get_json()["message"]


def test_aggregate_under_template_rules(project, make_user):
    alice, bob = make_user(project), make_user(project)
    project.server.put("/v1/collections/tasks", json={"rules": {"aggregate": {"members": "@user.id"},
                                                                "read": {"members": "@user.id"}}})
    project.server.post("/v1/collections/tasks/documents", json={"members": [alice.user_id], "hours": 3})
    project.server.post("/v1/collections/tasks/documents", json={"members": [alice.user_id, bob.user_id],
                                                                 "hours": 5})
    project.server.post("/v1/collections/tasks/documents", json={"members": [], "hours": 100})
    as_alice = alice.get("/v1/collections/tasks/aggregate", query_string={"metrics": "count,sum:hours"}).get_json()
    assert as_alice["groups"] == [{"key": None, "count": 2, "sum:hours": 8}]
    as_bob = bob.get("/v1/collections/tasks/aggregate", query_string={"metrics": "count,sum:hours"}).get_json()
    assert as_bob["groups"] == [{"key": None, "count": 1, "sum:hours": 5}]
