"""Update operators are applied atomically: concurrent writers all succeed and none is lost, while the schema,
the access rules and before-write hooks still hold for every result."""
import threading

import pytest
import requests

from baas.documents.updates import INT64_MAX, INT64_MIN, plan_atomic, shape_of
from baas.plugins.hookspecs import hookimpl
from baas.testing import ApiClient

WRITERS = 20
ROUNDS = 3


def _in_threads(work) -> None:
    """Run work(number) in WRITERS threads released together; fail with any thread's exception."""
    barrier = threading.Barrier(WRITERS)
    failures = []

    def run(number):
        try:
            barrier.wait(timeout=30)
            work(number)
        except Exception as exc:  # surfaced below: a thread's exception would otherwise vanish
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures


def _concurrently(app, headers: dict, bodies_for) -> list:
    """Each of WRITERS threads, with its own test client, sends its bodies in turn; returns the responses."""
    responses = []

    def writer(number):
        client = ApiClient(app.test_client(), headers)
        for path, body in bodies_for(number):
            response = client.patch(path, json=body)
            responses.append((response.status_code, response.get_json()))

    _in_threads(writer)
    assert len(responses) == WRITERS * ROUNDS
    return responses


def _new(project, collection="counters", **fields):
    response = project.server.post(f"/v1/collections/{collection}/documents", json=fields)
    assert response.status_code == 201, response.get_json()
    return f"/v1/collections/{collection}/documents/{response.get_json()['_id']}"


def test_concurrent_incs_all_succeed_and_add_up(app, project):
    path = _new(project, n=0)
    responses = _concurrently(app, project.server.headers, lambda number: [(path, {"$inc": {"n": 1}})] * ROUNDS)
    assert [status for status, _ in responses] == [200] * WRITERS * ROUNDS, responses
    assert project.server.get(path).get_json()["n"] == WRITERS * ROUNDS
    # Every answer is one state the document really had: each count was seen exactly once.
    assert sorted(body["n"] for _, body in responses) == list(range(1, WRITERS * ROUNDS + 1))
    assert len({body["_rev"] for _, body in responses}) == WRITERS * ROUNDS


def test_concurrent_incs_through_two_live_servers_all_succeed(server_process, project):
    """Real HTTP clients against two `baas serve` processes on one database: atomic across processes."""
    servers = [server_process(), server_process()]
    path = _new(project, n=0)
    statuses = []

    def writer(number):
        with requests.Session() as session:
            session.headers["X-API-Key"] = project.server_key
            for round_ in range(ROUNDS):
                url = servers[(number + round_) % 2].url + path
                statuses.append(session.patch(url, json={"$inc": {"n": 1}}, timeout=30).status_code)

    _in_threads(writer)
    assert statuses == [200] * WRITERS * ROUNDS, statuses
    assert project.server.get(path).get_json()["n"] == WRITERS * ROUNDS


def test_concurrent_pushes_and_add_to_sets_all_land(app, project):
    path = _new(project, log=[], seen=["start"])

    def bodies(number):
        return [(path, {"$push": {"log": f"w{number}-{round_}"}, "$addToSet": {"seen": f"w{number % 5}"}})
                for round_ in range(ROUNDS)]

    responses = _concurrently(app, project.server.headers, bodies)
    assert [status for status, _ in responses] == [200] * WRITERS * ROUNDS, responses
    doc = project.server.get(path).get_json()
    assert sorted(doc["log"]) == sorted(f"w{n}-{r}" for n in range(WRITERS) for r in range(ROUNDS))
    assert sorted(doc["seen"]) == sorted(["start"] + [f"w{n}" for n in range(5)])


def test_concurrent_incs_under_a_type_only_schema_stay_atomic(app, project):
    put = project.server.put("/v1/collections/typed", json={"schema": {
        "type": "object", "required": ["n"], "additionalProperties": False,
        "properties": {"n": {"type": "integer", "description": "a counter"}, "tags": {"type": "array",
                                                                                     "items": {"type": "string"}}}}})
    assert put.status_code in (200, 201), put.get_json()
    path = _new(project, "typed", n=0, tags=[])
    responses = _concurrently(app, project.server.headers,
                              lambda number: [(path, {"$inc": {"n": 2}, "$push": {"tags": f"t{number}"}})] * ROUNDS)
    assert [status for status, _ in responses] == [200] * WRITERS * ROUNDS, responses
    doc = project.server.get(path).get_json()
    assert doc["n"] == 2 * WRITERS * ROUNDS and len(doc["tags"]) == WRITERS * ROUNDS


def test_a_bound_in_the_schema_is_never_crossed_by_concurrent_incs(app, project):
    put = project.server.put("/v1/collections/bounded", json={"schema": {
        "type": "object", "properties": {"n": {"type": "integer", "maximum": 10}}}})
    assert put.status_code in (200, 201), put.get_json()
    path = _new(project, "bounded", n=0)
    responses = _concurrently(app, project.server.headers, lambda number: [(path, {"$inc": {"n": 1}})] * ROUNDS)
    statuses = [status for status, _ in responses]
    assert set(statuses) <= {200, 400, 409}, responses
    final = project.server.get(path).get_json()["n"]
    # The result depends on the value read, so each write is a replace guarded by the revision it read.
    assert final == statuses.count(200) <= 10
    assert all(body["n"] <= 10 for status, body in responses if status == 200)


def test_inc_results_outside_int64_are_400_and_change_nothing(project):
    path = _new(project, high=INT64_MAX - 1, low=INT64_MIN + 1, f=1e308)
    before = project.server.get(path).get_json()
    for body in ({"$inc": {"high": 2}}, {"$inc": {"low": -2}}, {"$inc": {"f": 1e308}}):
        response = project.server.patch(path, json=body)
        assert response.status_code == 400, (body, response.get_json())
        assert "number range" in response.get_json()["message"]
    assert project.server.get(path).get_json() == before
    response = project.server.patch(path, json={"$inc": {"high": 1, "low": -1}})
    assert response.status_code == 200
    assert response.get_json()["high"] == INT64_MAX and response.get_json()["low"] == INT64_MIN


def test_operator_results_have_the_right_types_on_every_backend(project):
    put = project.server.put("/v1/collections/events", json={"schema": {
        "type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}})
    assert put.status_code in (200, 201), put.get_json()
    path = _new(project, "events", n=1, flags=[], items=[], at="2024-05-01T10:30:00Z")
    response = project.server.patch(path, json={
        "$set": {"done": True, "meta.ok": False, "at": "2024-06-01T00:00:00Z"},
        "$push": {"flags": True, "items": {"$each": [{"k": 1}, [1, 2]]}}, "$inc": {"n": 0.5}})
    assert response.status_code == 200, response.get_json()
    for doc in (response.get_json(), project.server.get(path).get_json()):
        assert doc["done"] is True and doc["meta"] == {"ok": False}
        assert doc["flags"] == [True] and doc["items"] == [{"k": 1}, [1, 2]]
        assert doc["at"] == "2024-06-01T00:00:00.000Z" and doc["n"] == 1.5
    response = project.server.patch(path, json={"$addToSet": {"fresh": {"$each": ["a", "a", "b"]}}})
    assert response.status_code == 200 and response.get_json()["fresh"] == ["a", "b"]


def test_a_field_of_the_wrong_type_is_400_not_a_silent_no_op(project):
    path = _new(project, s="text", o={"inner": 1}, arr=[1])
    for body in ({"$inc": {"s": 1}}, {"$push": {"s": 1}}, {"$inc": {"s.x": 1}}, {"$inc": {"arr.x": 1}},
                 {"$addToSet": {"o": 1}}):
        response = project.server.patch(path, json=body)
        assert response.status_code == 400, (body, response.get_json())
    assert project.server.patch(path, json={"$inc": {"o.inner": 1}}).get_json()["o"] == {"inner": 2}


def test_the_update_rule_holds_for_atomic_updates(project, make_user):
    project.server.put("/v1/collections/tasks", json={"rules": {
        "create": "authenticated", "read": "authenticated", "update": {"_owner": "@user.id", "state": "open"}}})
    owner, other = make_user(project), make_user(project)
    created = owner.post("/v1/collections/tasks/documents", json={"state": "open", "votes": 0}).get_json()
    path = f"/v1/collections/tasks/documents/{created['_id']}"
    assert other.patch(path, json={"$inc": {"votes": 1}}).status_code == 403
    assert owner.patch(path, json={"$inc": {"votes": 1}}).get_json()["votes"] == 1
    # A field the rule reads must keep satisfying it.
    assert owner.patch(path, json={"$set": {"state": "closed"}}).status_code == 403
    assert project.server.get(path).get_json()["state"] == "open"


def test_before_write_hooks_see_and_may_change_operator_updates(app, project):
    seen = []

    class Stamp:
        @hookimpl
        def baas_before_document_write(self, action, document, previous):
            if action == "update":
                seen.append((previous["n"], document["n"]))
                document["stamped"] = document["n"] * 10

    app.extensions["baas"].hooks.register(Stamp())
    path = _new(project, n=1)
    response = project.server.patch(path, json={"$inc": {"n": 1}})
    assert response.status_code == 200, response.get_json()
    assert seen == [(1, 2)]
    assert response.get_json()["stamped"] == 20 and project.server.get(path).get_json()["stamped"] == 20


def test_if_match_still_guards_operator_updates(project):
    path = _new(project, n=1)
    etag = project.server.get(path).headers["ETag"]
    assert project.server.patch(path, json={"$inc": {"n": 1}}).status_code == 200
    response = project.server.patch(path, json={"$inc": {"n": 1}}, headers={"If-Match": etag})
    assert response.status_code == 412
    assert project.server.get(path).get_json()["n"] == 2


@pytest.mark.parametrize("schema, operations, atomic", [
    (None, [("$inc", "n", 1)], True),
    ({"type": "object", "properties": {"n": {"type": "integer"}}}, [("$inc", "n", 1)], True),
    ({"type": "object", "properties": {"n": {"type": "integer"}}}, [("$inc", "n", 0.5)], False),
    ({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}, [("$inc", "n", -1)], False),
    ({"type": "object", "properties": {"n": {"enum": [1, 2]}}}, [("$inc", "n", 1)], False),
    ({"type": "object", "if": {"required": ["n"]}, "then": {"required": ["m"]}}, [("$set", "x", 1)], False),
    ({"type": "object", "properties": {"t": {"type": "array", "maxItems": 3}}}, [("$push", "t", 1)], False),
    ({"type": "object", "properties": {"t": {"type": "array", "items": {"type": "integer"}}}},
     [("$push", "t", 1)], True),
    ({"type": "object", "properties": {"o": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
     [("$inc", "o.a", 1)], False),
    (None, [("$inc", "t.0", 1)], False),
    (None, [("$push", "t", {"k": 1})], False),
    (None, [("$set", "flag", True)], False),
    (None, [("$inc", "s", 1)], False),          # a string: the copy already refused it
    (None, [("$inc", "big", 1)], False),        # at the int64 edge: go the safe way
])
def test_plan_atomic_only_when_the_result_cannot_depend_on_concurrent_writes(schema, operations, atomic):
    previous = {"_id": "x", "n": 1, "t": [0], "o": {"a": 1}, "s": "text", "big": INT64_MAX}
    previous["_shape"] = shape_of(previous)
    plan = plan_atomic(operations, previous, schema=schema, fixed_fields=frozenset())
    assert (plan is not None) is atomic
    if atomic:
        assert plan[0]["_shape"] == previous["_shape"]


def test_plan_atomic_leaves_fixed_fields_to_the_guarded_replace():
    previous = {"n": 1, "_shape": shape_of({"n": 1})}
    assert plan_atomic([("$inc", "n", 1)], previous, schema=None, fixed_fields=frozenset({"n"})) is None
    # A document stored without a shape is first rewritten whole, which gives it one.
    assert plan_atomic([("$inc", "n", 1)], {"n": 1}, schema=None, fixed_fields=frozenset()) is None
    guard, update = plan_atomic([("$inc", "n", 1), ("$push", "t", "a")], previous, schema=None,
                                fixed_fields=frozenset({"m"}))
    assert update == {"$inc": {"n": 1}, "$push": {"t": "a"}}
    assert guard == {"_shape": previous["_shape"], "n": {"$gte": INT64_MIN, "$lte": INT64_MAX - 1}}


def test_a_shape_changes_with_types_and_fields_not_with_values():
    base = shape_of({"n": 1, "tags": ["a"], "o": {"x": "s"}, "_rev": "1"})
    assert shape_of({"n": 2.5, "tags": [1, 2], "o": {"x": "t"}, "_rev": "2"}) == base
    for other in ({"n": True, "tags": ["a"], "o": {"x": "s"}}, {"n": 1, "tags": "a", "o": {"x": "s"}},
                  {"n": 1, "tags": ["a"], "o": {"x": None}}, {"n": 1, "tags": ["a"], "o": {"x": "s"}, "new": 1},
                  {"n": 1, "tags": ["a"], "o": {}}, {"n": 1, "tags": ["a"]}):
        assert shape_of(other) != base, other


def test_a_looked_up_shape_is_the_computed_one():
    import hashlib
    from datetime import datetime, timezone

    from baas.documents.updates import _skeleton

    now = datetime.now(timezone.utc)
    docs = [{"n": 1, "s": "a", "_id": "x", "_created": now}, {"s": "b", "n": 2, "_id": "y", "_created": now},
            {"n": 1.5, "s": "a"}, {"n": True, "s": None, "t": [1, {"a": 1}]}, {"o": {"x": 1}}, {"o": {"x": "1"}},
            {"d": now}, {"d": "2026-01-01"}, {"_rev": "1"}, {}]
    for _ in range(2):  # the second time from the lookup where it applies
        for doc in docs:
            expected = hashlib.blake2b(_skeleton(doc, True).encode(), digest_size=8).hexdigest()
            assert shape_of(doc) == expected, doc


def test_the_shape_is_never_shown(project):
    path = _new(project, n=1)
    assert "_shape" not in project.server.get(path).get_json()
    assert "_shape" not in project.server.patch(path, json={"$inc": {"n": 1}}).get_json()
    assert "_shape" not in project.server.put(path, json={"n": 5}).get_json()
    listed = project.server.get("/v1/collections/counters/documents").get_json()["items"]
    assert listed and all("_shape" not in item for item in listed)


def test_operator_updates_that_break_a_unique_index_are_409_on_every_backend(project):
    put = project.server.put("/v1/collections/handles", json={"indexes": [
        {"name": "by_slot", "keys": {"slot": 1}, "unique": True}]})
    assert put.status_code in (200, 201), put.get_json()
    _new(project, "handles", slot=1)
    path = _new(project, "handles", slot=2)
    for body in ({"$inc": {"slot": -1}}, {"$set": {"slot": 1}}):
        response = project.server.patch(path, json=body)
        assert response.status_code == 409, (body, response.get_json())
    assert project.server.get(path).get_json()["slot"] == 2
    assert project.server.patch(path, json={"$inc": {"slot": 5}}).get_json()["slot"] == 7


def test_shapes_stay_what_stored_documents_hold():
    """Stored `_shape` values were computed by earlier versions: the digest of a skeleton must never change."""
    from datetime import datetime, timezone

    from bson import Int64, ObjectId

    assert shape_of({}) == "01e7b720ff566d53"
    assert shape_of({"_id": "x", "_rev": "1", "a": 1, "b": 2.5, "c": True, "d": None, "e": "s", "f": [1, "x"],
                     "g": {"h": {"i": False}, "_j": 1}}) == "60f46e571b683d93"
    assert shape_of({"name": "n", "tags": ["a"], "when": datetime(2026, 1, 1, tzinfo=timezone.utc),
                     "oid": ObjectId("6b0fb6c97d8fddf34f294869"), "big": Int64(5), "é": "ü", 'q"k': 1,
                     "sub": {}}) == "696b33cbc8ab0be5"
