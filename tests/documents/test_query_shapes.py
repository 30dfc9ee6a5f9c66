"""The shapes baas sends for speed mean exactly what the unrewritten filters mean.

`and_filters` flattens and merges what rules, plugins, cursors and clients combine; `find_page` reads keyset
pages branch by branch and, on the embedded database, sends `$eq` on schema-scalar fields and `_id` ranges as
min/max. Each shape is checked against the filter it replaces on the same data (arrays, missing fields, nulls,
mixed types, ties), on whichever server the suite runs against: nx-27017, or a real MongoDB when
BAAS_TEST_MONGODB_URI is set.
"""
import os

import pytest

from baas.query import and_filters, keyset_branches, keyset_filter
from baas.rules import matches
from baas.storage.mongo import embedded_find_command, find_page

REAL_MONGODB = bool(os.environ.get("BAAS_TEST_MONGODB_URI"))
DOCS = [
    {"_id": "a1", "g": 1, "s": 5, "tags": ["x", "y"], "o": "u1"},
    {"_id": "a2", "g": 1, "s": 5, "tags": "x", "o": "u2"},
    {"_id": "a3", "g": 1, "s": 7, "tags": [], "o": "u1"},
    {"_id": "a4", "g": 1, "s": None, "o": "u1"},
    {"_id": "a5", "g": 1, "o": "u1"},                      # s missing
    {"_id": "a6", "g": 2, "s": 5, "tags": ["y"], "o": "u1"},
    {"_id": "a7", "g": 2, "s": 4, "tags": ["x"], "o": None, "label": "5"},
    {"_id": "a8", "g": [1, 2], "s": 3, "o": "u2"},          # g holds an array
    {"_id": "a9", "g": 1, "s": 5.0, "o": "u1"},
    {"_id": "b1", "g": 1, "s": 9, "tags": ["x"], "o": "u2"},
    {"_id": "b2", "g": "1", "s": 5, "o": "u1"},              # a string, not the number 1
    {"_id": "b3", "g": 1, "s": 5, "o": "u1"},
]


@pytest.fixture(scope="module")
def shapes_collection(mongo_uri):
    import pymongo
    client = pymongo.MongoClient(mongo_uri, tz_aware=True)
    collection = client["baas_shapes_test"]["c_shapes"]
    collection.drop()
    collection.create_index([("g", 1), ("s", -1)], name="by_g_s")
    collection.insert_many([dict(d) for d in DOCS])
    yield collection
    client.drop_database("baas_shapes_test")
    client.close()


def ids(collection, query) -> list[str]:
    return sorted(d["_id"] for d in collection.find(query, {"_id": 1}))


MERGE_CASES = [
    [{"g": 1}, {"o": "u1"}],
    [{"s": {"$gte": 5}}, {"s": {"$lt": 9}}],
    [{"s": {"$gt": 3}}, {"$and": [{"s": {"$lte": 7}}, {"o": "u1"}]}],
    [{"g": 1}, {"g": 1}],
    [{"g": 1}, {"g": {"$gt": 0}}],
    [{"g": 1}, {"g": 2}],
    [{"tags": "x"}, {"tags": {"$size": 2}}],
    [{"tags": {"$in": ["x"]}}, {"tags": {"$in": ["y"]}}],
    [{"$or": [{"o": "u1"}, {"o": None}]}, {"$or": [{"s": 5}, {"s": 7}]}],
    [{"label": "5"}, {"s": {"$lte": 5}}],
    [{"s": 5}, {"s": 5.0}],
    [{"o": None}, {"g": {"$exists": True}}],
]


@pytest.mark.parametrize("parts", MERGE_CASES, ids=[str(p) for p in MERGE_CASES])
def test_merged_filter_matches_what_the_and_matches(shapes_collection, parts):
    merged = and_filters(*parts)
    assert "$and" not in merged or len(merged["$and"]) < len(parts)
    # The truth is MongoDB's semantics (baas.rules.matches, checked on its own); nx-27017's Python
    # evaluation of `$and` itself misses some of it ({"o": null} inside `$and`), so it is not the reference.
    truth = sorted(d["_id"] for d in DOCS if matches({"$and": parts}, d))
    assert ids(shapes_collection, merged) == truth
    if REAL_MONGODB:
        assert ids(shapes_collection, {"$and": parts}) == truth


def test_merging_flattens_and_keeps_conflicts_in_one_and():
    assert and_filters({"g": 1}, {"$and": [{"o": "u1"}, {"s": {"$lt": 9}}]}, {"s": {"$gte": 1}}) == \
        {"g": 1, "o": "u1", "s": {"$lt": 9, "$gte": 1}}
    assert and_filters({"s": {"$lt": 9}}, {"s": {"$lt": 5}}) == {"s": {"$lt": 9}, "$and": [{"s": {"$lt": 5}}]}
    assert and_filters({"g": 1}, {"g": True}) == {"g": 1, "$and": [{"g": True}]}, "1 and true differ"
    assert and_filters({"o": "u1"}, {"o": "u1"}, None, {}) == {"o": "u1"}
    assert and_filters() == {}


# Mixed types within one sort field are left to test_query.py (through the API): the embedded database's
# own order of mixed types differs from MongoDB's, in either shape.
SORTS = [[("s", -1), ("_id", 1)], [("s", 1), ("_id", 1)], [("o", 1), ("s", -1), ("_id", 1)], [("_id", 1)],
         [("_id", -1)]]


def _sort_value(doc, field):
    return doc.get(field)


@pytest.mark.parametrize("sort", SORTS, ids=[str(s) for s in SORTS])
def test_keyset_branches_read_in_order_give_the_pages_of_the_single_filter(shapes_collection, sort):
    # The same cursor position, read as ordered branches (the embedded form) and as one $or (the MongoDB
    # form), at every document of the one-page order: both give exactly the rest of that order.
    everything = list(shapes_collection.find({}, sort=sort))
    order = [d["_id"] for d in everything]
    for position, doc in enumerate(everything):
        values = [_sort_value(doc, field) for field, _ in sort]
        rest = order[position + 1:]
        single = [d["_id"] for d in shapes_collection.find(keyset_filter(sort, values), sort=sort)]
        branched = []
        for branch in keyset_branches(sort, values):
            branched.extend(d["_id"] for d in shapes_collection.find(branch, sort=sort))
        assert branched == rest, (doc["_id"], values)
        if REAL_MONGODB:  # nx-27017 evaluates `$or` in Python, where it misses some null/missing matches
            assert single == rest, (doc["_id"], values)


@pytest.mark.parametrize("sql_backed", [False, True] if REAL_MONGODB else [True])
@pytest.mark.parametrize("sort", SORTS[:3], ids=[str(s) for s in SORTS[:3]])
def test_find_page_pages_the_same_in_both_shapes(shapes_collection, sort, sql_backed):
    base = {"o": "u1"}
    want = [d["_id"] for d in shapes_collection.find(base, sort=sort)]
    got, after = [], None
    while True:
        page = find_page(shapes_collection, base, None, sort, 0, 3, after=after, sql_backed=sql_backed,
                         scalar_fields=frozenset({"o"}))
        got.extend(d["_id"] for d in page)
        if len(page) < 3:
            break
        after = keyset_branches(sort, [page[-1].get(field) for field, _ in sort])
    assert got == want


def _run(collection, command) -> list[str]:
    return sorted(d["_id"] for d in collection.database.command(command)["cursor"]["firstBatch"])


@pytest.mark.parametrize("query", [
    {"o": "u1"}, {"o": "u1", "g": 1}, {"_id": {"$gt": "a3"}}, {"_id": {"$gte": "a3", "$lt": "b2"}},
    {"_id": {"$lte": "a3"}, "o": "u1"}, {"_id": {"$gt": "a3"}, "s": {"$gte": 5}}, {"_id": {"$in": ["a1", "b1"]}},
])
def test_embedded_command_matches_the_plain_command(shapes_collection, query):
    # `o` is scalar in every document here, as a schema declaring it a string guarantees.
    plain = {"find": shapes_collection.name, "filter": query, "sort": {"_id": 1}, "limit": 100}
    shaped = embedded_find_command(shapes_collection.name, query, None, [("_id", 1)], 0, 100,
                                   scalar_fields=frozenset({"o"}))
    if REAL_MONGODB and ("min" in shaped or "max" in shaped):
        pytest.skip("min/max are options of the embedded database only; MongoDB never gets them")
    assert _run(shapes_collection, shaped) == _run(shapes_collection, plain) == ids(shapes_collection, query)


def test_equality_on_a_field_that_may_hold_arrays_stays_plain():
    # g holds an array in one document: only plain equality matches it there.
    command = embedded_find_command("c", {"g": 1, "o": "u1"}, None, [("_id", 1)], 0, 10,
                                    scalar_fields=frozenset({"o"}))
    assert command["filter"] == {"g": 1, "o": {"$eq": "u1"}}


def test_the_embedded_database_is_recognised(docs):
    assert docs.mongo.sql_backed is not REAL_MONGODB


# --- through the API: a schema-typed collection paged across ties, public and under the owner rule ---------

def test_pages_over_ties_are_the_one_page_order_for_public_and_owner_rules(project):
    from baas.testing import sign_up_user
    schema = {"type": "object", "properties": {"group": {"type": "integer"}, "score": {"type": "integer"}}}
    rules = {"list": "owner", "read": "owner", "create": "authenticated", "update": "owner", "delete": "owner"}
    for name, rule in (("ranked", "public"), ("mine", "owner")):
        defined = project.server.put(f"/v1/collections/{name}", json={
            "schema": schema, "indexes": [{"name": "by_group_score", "keys": {"group": 1, "score": -1}}],
            "rules": dict(rules, list=rule, read=rule)})
        assert defined.status_code in (200, 201), defined.get_json()
    user = sign_up_user(project)
    other = sign_up_user(project)
    for i in range(23):
        body = {"group": i % 2, "score": i % 4}                     # many ties on score
        for name in ("ranked", "mine"):
            for caller in (user, other):
                assert caller.post(f"/v1/collections/{name}/documents", json=body).status_code == 201
    for name, caller, expected in (("ranked", project.client, 22), ("mine", user, 11)):
        for sort in ("-score", "score,-_id"):
            params = {"filter": '{"group": 1}', "sort": sort}
            one_page = caller.get(f"/v1/collections/{name}/documents",
                                  query_string={**params, "limit": 1000}).get_json()["items"]
            seen, cursor = [], None
            while True:
                response = caller.get(f"/v1/collections/{name}/documents",
                                      query_string={**params, "limit": 5, **({"cursor": cursor} if cursor else {})})
                assert response.status_code == 200, response.get_json()
                seen.extend(response.get_json()["items"])
                cursor = response.get_json()["next_cursor"]
                if cursor is None:
                    break
            assert len(one_page) == expected
            assert [d["_id"] for d in seen] == [d["_id"] for d in one_page]
            if name == "mine":
                assert {d["_owner"] for d in seen} == {user.user_id}


# --- equality on an indexed field that may hold arrays: membership, as on MongoDB -----------------------------

def test_equality_on_an_indexed_field_that_may_hold_arrays_becomes_in():
    # The embedded database drops the membership test on fields its index names end with, and for `$eq`.
    command = embedded_find_command("c_t", {"tags": "x", "n": {"$eq": 1}, "other": "y"}, None, [("_id", 1)], 0,
                                    10, index_keys=(("g", "tags"),))
    assert command["filter"] == {"tags": {"$in": ["x"]}, "n": {"$in": [1]}, "other": "y"}


def test_equality_on_indexed_array_fields_finds_arrays_through_the_api(project):
    created = project.server.put("/v1/collections/tagged", json={
        "indexes": [{"name": "by_tags", "keys": {"tags": 1}}, {"name": "by_kind_n", "keys": {"kind": 1, "n": 1}}],
        "rules": {action: "public" for action in ("list", "read", "create", "update", "delete")}})
    assert created.status_code in (200, 201), created.get_json()
    bodies = [{"tags": ["a", "b"], "n": [1, 2], "kind": "k"}, {"tags": "a", "n": 1, "kind": "k"},
              {"tags": "z", "n": 3, "kind": "k"}, {"tags": ["z"], "n": [7], "kind": "k"}]
    made = []
    for body in bodies:
        response = project.client.post("/v1/collections/tagged/documents", json=body)
        assert response.status_code == 201, response.get_json()
        made.append(response.get_json()["_id"])
    for filter, expected in (('{"tags": "a"}', made[:2]), ('{"tags": {"$eq": "a"}}', made[:2]),
                             ('{"kind": "k", "n": 1}', made[:2]), ('{"n": 7}', made[3:]),
                             ('{"tags": "z", "kind": "k"}', made[2:])):
        listed = project.client.get("/v1/collections/tagged/documents",
                                    query_string={"filter": filter, "count": "true", "limit": 100})
        assert listed.status_code == 200, listed.get_json()
        assert sorted(d["_id"] for d in listed.get_json()["items"]) == sorted(expected), filter
        assert listed.get_json()["total"] == len(expected), filter
