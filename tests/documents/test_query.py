"""Queries: every whitelisted operator, refused operators and bounds, sort, fields, limit, offset, cursors, count."""
import base64
import json

import pytest

from baas.query import compile_filter
from baas.rules import matches

ITEMS = [
    {"_id": "a", "name": "apple", "n": 1, "tags": ["red", "fruit"], "sub": [{"k": 1}, {"k": 5}], "color": "red"},
    {"_id": "b", "name": "Banana", "n": 2, "tags": ["yellow", "fruit"], "sub": [{"k": 2}], "color": "yellow"},
    {"_id": "c", "name": "cherry", "n": 3, "tags": ["red"], "sub": [], "color": "red", "extra": True},
    {"_id": "d", "name": "date", "n": 4, "tags": [], "sub": [{"k": 9}], "color": "brown"},
]


@pytest.fixture
def fruits(project):
    for item in ITEMS:
        assert project.server.post("/v1/collections/fruits/documents", json=item).status_code == 201
    return project.server


def ids(caller, query, **params):
    response = caller.get("/v1/collections/fruits/documents",
                          query_string={"filter": json.dumps(query), "limit": 100, **params})
    assert response.status_code == 200, response.get_json()
    return sorted(d["_id"] for d in response.get_json()["items"])


OPERATOR_CASES = [
    ({"color": "red"}, ["a", "c"]),
    ({"tags": "fruit"}, ["a", "b"]),                                   # array membership
    ({"n": {"$eq": 2}}, ["b"]),
    ({"n": {"$ne": 2}}, ["a", "c", "d"]),
    ({"n": {"$gt": 2}}, ["c", "d"]),
    ({"n": {"$gte": 2}}, ["b", "c", "d"]),
    ({"n": {"$lt": 2}}, ["a"]),
    ({"n": {"$lte": 2}}, ["a", "b"]),
    ({"n": {"$gt": 1, "$lt": 4}}, ["b", "c"]),
    ({"color": {"$in": ["yellow", "brown"]}}, ["b", "d"]),
    ({"color": {"$nin": ["red"]}}, ["b", "d"]),
    ({"extra": {"$exists": True}}, ["c"]),
    ({"name": {"$regex": "^b"}}, []),
    ({"name": {"$regex": "^b", "$options": "i"}}, ["b"]),
    ({"name": {"$regex": "rr"}}, ["c"]),
    ({"$and": [{"color": "red"}, {"n": {"$gt": 1}}]}, ["c"]),
    ({"$or": [{"color": "yellow"}, {"n": 4}]}, ["b", "d"]),
    ({"$nor": [{"color": "red"}, {"n": 4}]}, ["b"]),
    ({"n": {"$not": {"$gt": 2}}}, ["a", "b"]),
    ({"n": {"$not": {"$in": [1, 4]}}, "color": "red"}, ["c"]),
    ({"tags": {"$all": ["red", "fruit"]}}, ["a"]),
    ({"sub": {"$elemMatch": {"k": {"$gt": 4}}}}, ["a", "d"]),
    ({"tags": {"$size": 2}}, ["a", "b"]),
    ({"tags": {"$size": 0}}, ["d"]),
    ({"sub.k": 2}, ["b"]),
    ({"_id": {"$in": ["a", "d"]}}, ["a", "d"]),
]


@pytest.mark.parametrize("query, expected", OPERATOR_CASES)
def test_every_operator(fruits, query, expected):
    assert ids(fruits, query) == expected
    response = fruits.get("/v1/collections/fruits/documents",
                          query_string={"filter": json.dumps(query), "limit": 1, "count": "true"})
    assert response.get_json()["total"] == len(expected)


@pytest.mark.parametrize("query, expected", OPERATOR_CASES)
def test_rule_matcher_agrees_with_the_database(query, expected):
    """create/update rules are checked in Python against the new document; it must match like MongoDB."""
    compiled = compile_filter(query)
    assert sorted(item["_id"] for item in ITEMS if matches(compiled, item)) == expected


@pytest.mark.parametrize("query, operator", [
    ({"$where": "this.n > 1"}, "$where"),
    ({"$expr": {"$gt": ["$n", 1]}}, "$expr"),
    ({"n": {"$function": {"body": "x", "args": [], "lang": "js"}}}, "$function"),
    ({"n": {"$accumulator": {}}}, "$accumulator"),
    ({"$jsonSchema": {"required": ["n"]}}, "$jsonSchema"),
    ({"$text": {"$search": "x"}}, "$text"),
    ({"n": {"$type": "string"}}, "$type"),
    ({"n": {"$mod": [2, 0]}}, "$mod"),
    ({"n": {"$bogus": 1}}, "$bogus"),
    ({"$or": [{"n": {"$where": "1"}}]}, "$where"),
    ({"sub": {"$elemMatch": {"k": {"$where": "1"}}}}, "$where"),
    ({"n": {"$not": {"$expr": 1}}}, "$expr"),
    ({"n": {"$in": [{"$gt": 1}]}}, "$gt"),
    ({"n": {"$eq": {"$ne": 1}}}, "$ne"),
    ({"$comment": "x"}, "$comment"),
])
def test_refused_operators_are_named(fruits, query, operator):
    response = fruits.get("/v1/collections/fruits/documents", query_string={"filter": json.dumps(query)})
    assert response.status_code == 400, response.get_json()
    assert operator in response.get_json()["message"]


@pytest.mark.parametrize("query, fragment", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "object"),
    (json.dumps({"n": {"$gt": 1, "plain": 2}}), "mixes"),
    (json.dumps({"name": {"$regex": "a" * 300}}), "at most"),
    (json.dumps({"name": {"$regex": "("}}), "not a valid pattern"),
    (json.dumps({"name": {"$regex": "a", "$options": "g"}}), "$options"),
    (json.dumps({"name": {"$options": "i"}}), "$options"),
    (json.dumps({"tags": {"$size": -1}}), "$size"),
    (json.dumps({"n": {"$exists": "yes"}}), "$exists"),
    (json.dumps({"n": {"$in": 5}}), "$in"),
    (json.dumps({"$or": []}), "non-empty"),
    (json.dumps({"bad field": 1}), "Invalid field name"),
    (json.dumps({"a..b": 1}), "Invalid field name"),
    (json.dumps({"": 1}), "field name"),
    (json.dumps({"n": {"$not": {"$not": {"$gt": 1}}}}), "nested"),
    (json.dumps({"n": {"$in": list(range(1001))}}), "1000"),
])
def test_bad_filters(fruits, query, fragment):
    response = fruits.get("/v1/collections/fruits/documents", query_string={"filter": query})
    assert response.status_code == 400, response.get_json()
    assert fragment.lower() in response.get_json()["message"].lower()


def test_nesting_depth_is_bounded(fruits):
    query = {"n": 1}
    for _ in range(12):
        query = {"$and": [query]}
    response = fruits.get("/v1/collections/fruits/documents", query_string={"filter": json.dumps(query)})
    assert response.status_code == 400
    assert "deeper" in response.get_json()["message"]
    shallow = {"$and": [{"$or": [{"n": 1}, {"n": 2}]}]}
    assert ids(fruits, shallow) == ["a", "b"]


def test_sort_fields_limit_offset(fruits):
    def names(**params):
        response = fruits.get("/v1/collections/fruits/documents", query_string=params)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["items"]

    assert [d["_id"] for d in names(sort="-n")] == ["d", "c", "b", "a"]
    assert [d["_id"] for d in names(sort="color,-n")] == ["d", "c", "a", "b"]
    assert [d["_id"] for d in names(sort="n", limit=2, offset=1)] == ["b", "c"]
    picked = names(sort="n", fields="name,color", limit=1)
    assert picked == [{"_id": "a", "name": "apple", "color": "red"}]
    for params, fragment in (({"sort": "n,n"}, "twice"), ({"sort": "$where"}, "$where"),
                             ({"fields": "a.b"}, "top-level"), ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"),
                             ({"limit": "x"}, "integer"), ({"offset": -1}, "offset"), ({"count": "maybe"}, "count")):
        response = fruits.get("/v1/collections/fruits/documents", query_string=params)
        assert response.status_code == 400, params
        assert fragment in response.get_json()["message"]


def test_count_is_opt_in(fruits):
    page = fruits.get("/v1/collections/fruits/documents", query_string={"limit": 1}).get_json()
    assert "total" not in page
    page = fruits.get("/v1/collections/fruits/documents",
                      query_string={"limit": 1, "count": "true", "filter": '{"color": "red"}'}).get_json()
    assert page["total"] == 2 and len(page["items"]) == 1


def _all_pages(caller, **params):
    seen, cursor = [], None
    while True:
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        response = caller.get("/v1/collections/items/documents", query_string=query)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_keyset_pagination_is_stable_while_inserting(project):
    server = project.server
    for i in range(25):
        server.post("/v1/collections/items/documents", json={"_id": f"i{i:02d}", "score": i % 5, "name": f"n{i}"})
    first = server.get("/v1/collections/items/documents", query_string={"sort": "-score,name", "limit": 10}).get_json()
    assert len(first["items"]) == 10 and first["next_cursor"]
    # Documents inserted before the cursor position do not shift the following pages.
    server.post("/v1/collections/items/documents", json={"_id": "late", "score": 99, "name": "zz"})
    rest = []
    cursor = first["next_cursor"]
    while cursor:
        page = server.get("/v1/collections/items/documents",
                          query_string={"sort": "-score,name", "limit": 10, "cursor": cursor}).get_json()
        rest.extend(page["items"])
        cursor = page["next_cursor"]
    got = [d["_id"] for d in first["items"] + rest]
    assert len(got) == len(set(got)) == 25
    expected = sorted((f"i{i:02d}" for i in range(25)), key=lambda x: (-(int(x[1:]) % 5), f"n{int(x[1:])}"))
    assert got == expected

    everything = _all_pages(server, sort="name", limit=7, fields="name")
    assert [d["name"] for d in everything] == sorted(d["name"] for d in everything)
    assert len(everything) == 26
    assert all(set(d) == {"_id", "name"} for d in everything)
    by_id = _all_pages(server, limit=4)
    assert [d["_id"] for d in by_id] == sorted(d["_id"] for d in by_id)


def test_cursor_tampering_is_refused(project):
    server = project.server
    for i in range(5):
        server.post("/v1/collections/items/documents", json={"n": i})
    page = server.get("/v1/collections/items/documents", query_string={"limit": 2, "sort": "n"}).get_json()
    cursor = page["next_cursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    forged_payload = raw[16:].replace(b'"n"', b'"m"')
    forged = base64.urlsafe_b64encode(raw[:16] + forged_payload).rstrip(b"=").decode()
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for bad in (forged, flipped, "garbage", "", "x" * 5000):
        if bad == "":
            continue
        response = server.get("/v1/collections/items/documents", query_string={"limit": 2, "sort": "n", "cursor": bad})
        assert response.status_code == 400, bad
        assert "cursor" in response.get_json()["message"]
    # A valid cursor replayed with another sort, filter or collection is refused too.
    for params, collection in (({"sort": "-n"}, "items"), ({"sort": "n", "filter": '{"n": {"$gte": 0}}'}, "items"),
                               ({"sort": "n"}, "other")):
        response = server.get(f"/v1/collections/{collection}/documents",
                              query_string={"limit": 2, "cursor": cursor, **params})
        assert response.status_code == 400
    ok = server.get("/v1/collections/items/documents", query_string={"limit": 2, "sort": "n", "cursor": cursor})
    assert [d["n"] for d in ok.get_json()["items"]] == [2, 3]


@pytest.mark.parametrize("sort", ["rank", "-rank"])
def test_cursor_pages_cross_from_numbers_to_strings_and_missing(project, sort):
    # MongoDB sorts null/missing < numbers < strings, and $gt/$lt compare one type only: a page boundary on a
    # number must still reach the strings (and, descending, the missing values).
    values = [3, 1, "b", 2, "a", None, "c", 4]
    for i, value in enumerate(values):
        body = {"_id": f"m{i}"} if value is None else {"_id": f"m{i}", "rank": value}
        assert project.server.post("/v1/collections/items/documents", json=body).status_code == 201
    pages = _all_pages(project.server, sort=sort, limit=2)
    got = [d["_id"] for d in pages]
    assert len(got) == len(set(got)) == len(values)
    one_page = project.server.get("/v1/collections/items/documents",
                                  query_string={"sort": sort, "limit": 100}).get_json()["items"]
    assert got == [d["_id"] for d in one_page], "paging returns exactly the one-page order"
