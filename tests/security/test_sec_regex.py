"""Client regexes cannot freeze the database: catastrophic and non-portable patterns are refused with a 400 that
says why, on every path a pattern takes (filters, $not, $elemMatch, $or, aggregates, access rules, schemas)."""
import json

import pytest

from security_helpers import assert_error

NAMES = ["a" * 40 + "b", "apple", "Apricot", "banana", "cat dog", "line1\nline2", "a.b", "x+y"]
EVERYTHING = {a: "public" for a in ("list", "read", "create", "update", "delete", "aggregate")}


@pytest.fixture
def names(project):
    assert project.server.put("/v1/collections/names", json={"rules": EVERYTHING}).status_code in (200, 201)
    for name in NAMES:
        response = project.server.post("/v1/collections/names/documents", json={"name": name, "tags": [name]})
        assert response.status_code == 201, response.get_json()
    return project


def _find(project, query: dict):
    return project.server.get("/v1/collections/names/documents",
                              query_string={"filter": json.dumps(query), "limit": 100})


def test_a_catastrophic_pattern_is_refused_and_the_database_keeps_serving(names):
    body = assert_error(_find(names, {"name": {"$regex": "^(a+)+$"}}), 400)
    assert "(a+)+" in body["message"] and "repeat" in body["message"]
    # the embedded database never saw it: it still answers every request
    items = _find(names, {"name": {"$regex": "^a"}}).get_json()["items"]
    assert sorted(d["name"] for d in items) == sorted(n for n in NAMES if n.startswith("a"))


# One pattern per class of refusal, with a word of the reason the client gets.
REFUSED = [
    ("^(a+)+$", "repeat"),                      # nested overlapping quantifiers
    ("(a*)*b", "match nothing"),                # repeated part that can be empty
    ("(\\w+\\s?)+$", "repeat"),                 # nested, overlapping through a class
    ("(a|a)*b", "alternatives"),                # overlapping alternatives in a repeat
    ("(a|ab)+c", "repeat"),
    ("(a|a)(a|a)(a|a)(a|a)(a|a)b", "too many alternatives"),
    ("a*a*b", "in a row"),                      # adjacent overlapping quantifiers
    ("\\d+\\d+x", "in a row"),
    (".*a.*a.*b", "in a row"),
    ("(a)\\1", "backreference"),
    ("(?=a)a", "lookahead"),
    ("(?<!a)b", "lookbehind"),
    ("(?>a+)b", "atomic"),
    ("a++b", "possessive"),
    ("(?i)a", "$options"),
    ("(?P<x>a)", "named groups"),
    ("\\p{L}", "escape"),
    ("[[:alpha:]]", "character class"),
    ("a{1001}", "1000"),
    ("x" * 257, "256"),
    ("(", "not a valid pattern"),
]


@pytest.mark.parametrize("pattern, reason", REFUSED)
def test_unsafe_patterns_are_refused_on_every_path(names, pattern, reason):
    regex = {"$regex": pattern}
    filters = [{"name": regex}, {"name": {"$not": regex}}, {"tags": {"$elemMatch": regex}},
               {"$or": [{"name": "apple"}, {"name": regex}]}, {"name": {"$regex": pattern, "$options": "i"}}]
    for query in filters:
        body = assert_error(_find(names, query), 400)
        assert reason.lower() in body["message"].lower(), (query, body)
    aggregate = names.server.get("/v1/collections/names/aggregate", query_string={"filter": json.dumps(filters[0])})
    assert reason.lower() in assert_error(aggregate, 400)["message"].lower()
    rule = names.server.put("/v1/collections/ruled", json={"rules": {"list": {"name": regex}}})
    assert reason.lower() in assert_error(rule, 400)["message"].lower()
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": pattern}}}
    assert reason.lower() in assert_error(names.server.put("/v1/collections/schemed", json={"schema": schema}),
                                          400)["message"].lower()
    assert names.server.get("/v1/collections/ruled").status_code == 404
    assert names.server.get("/v1/collections/schemed").status_code == 404


# Patterns in the accepted subset mean the same on every backend.
ACCEPTED = [
    ("^a", "", [n for n in NAMES if n.startswith("a")]),
    ("^a", "i", [n for n in NAMES if n.lower().startswith("a")]),
    ("an", "", ["banana"]),
    ("^(ban|can)ana$", "", ["banana"]),
    ("^[a-z]+$", "", ["apple", "banana", "a" * 40 + "b"]),
    ("^\\w+\\s\\w+$", "", ["cat dog", "line1\nline2"]),
    ("a\\.b", "", ["a.b"]),
    ("x\\+y", "", ["x+y"]),
    ("^line2", "m", ["line1\nline2"]),
    ("line1.line2", "s", ["line1\nline2"]),
    ("^ a p p l e $", "x", ["apple"]),
    ("^a{40}b$", "", ["a" * 40 + "b"]),
    ("^(?:ap)+", "", ["apple"]),
    ("^[^@]+\\.b$", "", ["a.b"]),
    ("\\bdog\\b", "", ["cat dog"]),
    ("^\\x61pple", "", ["apple"]),
]


@pytest.mark.parametrize("pattern, options, expected", ACCEPTED)
def test_safe_patterns_match_as_documented(names, pattern, options, expected):
    regex = {"$regex": pattern, "$options": options} if options else {"$regex": pattern}
    response = _find(names, {"name": regex})
    assert response.status_code == 200, response.get_json()
    assert sorted(d["name"] for d in response.get_json()["items"]) == sorted(expected)


@pytest.mark.parametrize("options", ["g", "ii", "u", 1, None, "imsxi"])
def test_bad_options_are_refused(names, options):
    body = assert_error(_find(names, {"name": {"$regex": "^a", "$options": options}}), 400)
    assert "$options" in body["message"]


@pytest.mark.parametrize("query", [
    {"name": {"$in": [{"$regex": "^(a+)+$"}]}}, {"name": {"$nin": [{"$regex": "^(a+)+$"}]}},
    {"tags": {"$all": [{"$regex": "^(a+)+$"}]}}, {"name": {"$regularExpression": {"pattern": "^(a+)+$"}}},
    {"name": {"$eq": {"$regex": "^(a+)+$"}}},
])
def test_regexes_cannot_hide_in_values(names, query):
    body = assert_error(_find(names, query), 400)
    assert "$regex" in body["message"] or "$regularExpression" in body["message"], body


def test_options_need_a_regex(names):
    assert "$regex" in assert_error(_find(names, {"name": {"$options": "i"}}), 400)["message"]


def test_the_length_bound_is_configurable(make_app, admin, client):
    from baas.testing import ADMIN_TOKEN, ApiClient, create_project

    app = make_app({"query.max_regex_length": 8})
    test_client = app.test_client()
    project = create_project(ApiClient(test_client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}), test_client)
    project.server.put("/v1/collections/names", json={"rules": EVERYTHING})
    ok = project.server.get("/v1/collections/names/documents", query_string={"filter": '{"n": {"$regex": "^abcdefg"}}'})
    assert ok.status_code == 200, ok.get_json()
    long = project.server.get("/v1/collections/names/documents",
                              query_string={"filter": '{"n": {"$regex": "^abcdefgh"}}'})
    assert "longer than 8" in assert_error(long, 400)["message"]
