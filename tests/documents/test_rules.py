"""Access rules: every rule kind, 403 versus 404, and leak attempts through filter, count, aggregate, expand, cursor."""
import json

import pytest

from baas.documents.service import FindParams
from baas.errors import Forbidden, NotFound


def define(docs, principals, name, rules, schema=None):
    body = {"rules": rules}
    if schema is not None:
        body["schema"] = schema
    docs.put_collection(principals.server(), name, body)


def listed(docs, principal, name, **params):
    return sorted(d.get("label") for d in docs.find(principal, name, FindParams(**params))["items"])


@pytest.fixture
def board(docs, principals):
    """A collection with documents of alice, bob and the server, opened by the rules a test passes."""
    server = principals.server()
    alice, bob = principals.user("alice", "editor"), principals.user("bob")

    def make(rules):
        define(docs, principals, "board", rules)
        docs.create(server, "board", {"label": "server", "members": [], "team": "ops"})
        docs.create(server, "board", {"label": "alice", "_owner": "alice", "members": ["alice"], "team": "editor"})
        docs.create(server, "board", {"label": "bob", "_owner": "bob", "members": ["bob", "alice"], "team": "sales"})
        return alice, bob

    return make


def test_public(docs, principals, board):
    alice, _ = board({"list": "public", "read": "public"})
    anonymous = principals.client()
    assert listed(docs, anonymous, "board") == ["alice", "bob", "server"]
    assert listed(docs, alice, "board") == ["alice", "bob", "server"]


def test_authenticated(docs, principals, board):
    alice, _ = board({"list": "authenticated", "read": "authenticated"})
    with pytest.raises(Forbidden):
        docs.find(principals.client(), "board", FindParams())
    assert listed(docs, alice, "board") == ["alice", "bob", "server"]


def test_owner(docs, principals, board):
    alice, bob = board({"list": "owner", "read": "owner"})
    assert listed(docs, alice, "board") == ["alice"]
    assert listed(docs, bob, "board") == ["bob"]
    with pytest.raises(Forbidden):
        docs.find(principals.client(), "board", FindParams())


def test_role(docs, principals, board):
    alice, bob = board({"list": "role:editor", "read": "role:editor"})
    assert listed(docs, alice, "board") == ["alice", "bob", "server"]
    with pytest.raises(Forbidden) as refused:
        docs.find(bob, "board", FindParams())
    assert "editor" in refused.value.message


def test_none_is_server_only(docs, principals, board):
    alice, _ = board({"list": "none", "read": "none"})
    with pytest.raises(Forbidden):
        docs.find(alice, "board", FindParams())
    assert listed(docs, principals.server(), "board") == ["alice", "bob", "server"]


def test_template_with_user_id(docs, principals, board):
    alice, bob = board({"list": {"members": "@user.id"}, "read": {"members": "@user.id"}})
    assert listed(docs, alice, "board") == ["alice", "bob"]
    assert listed(docs, bob, "board") == ["bob"]
    with pytest.raises(Forbidden):   # no user: a template naming @user is denied, never matched against null
        docs.find(principals.client(), "board", FindParams())


def test_template_with_user_roles(docs, principals, board):
    alice, bob = board({"list": {"team": {"$in": "@user.roles"}}, "read": {"team": {"$in": "@user.roles"}}})
    assert listed(docs, alice, "board") == ["alice"]
    assert listed(docs, bob, "board") == []


def test_template_with_not_is_compiled(docs, principals, board):
    alice, _ = board({"list": {"team": {"$not": {"$in": ["ops"]}}}, "read": "public"})
    assert listed(docs, alice, "board") == ["alice", "bob"]


def test_list_of_rules_means_any_of(docs, principals, board):
    alice, bob = board({"list": ["owner", "role:editor"], "read": ["owner", "role:editor"]})
    assert listed(docs, alice, "board") == ["alice", "bob", "server"]
    assert listed(docs, bob, "board") == ["bob"]


def test_list_never_shows_what_read_hides(docs, principals, board):
    alice, _ = board({"list": "public", "read": "owner"})
    assert listed(docs, alice, "board") == ["alice"]


def test_create_rules(docs, principals):
    define(docs, principals, "rooms", {"create": {"members": "@user.id"}, "read": "public"})
    alice = principals.user("alice")
    assert docs.create(alice, "rooms", {"members": ["alice", "bob"]})["_owner"] == "alice"
    with pytest.raises(Forbidden):
        docs.create(alice, "rooms", {"members": ["bob"]})
    with pytest.raises(Forbidden):
        docs.create(principals.client(), "rooms", {"members": []})
    define(docs, principals, "open", {"create": "public", "read": "public"})
    assert docs.create(principals.client(), "open", {"a": 1})["_owner"] is None


def test_update_result_must_still_satisfy_the_rule(docs, principals):
    define(docs, principals, "rooms", {"create": {"members": "@user.id"}, "update": {"members": "@user.id"},
                                       "read": "public"})
    alice = principals.user("alice")
    room = docs.create(alice, "rooms", {"members": ["alice"]})
    assert docs.update(alice, "rooms", room["_id"], {"$push": {"members": "bob"}})["members"] == ["alice", "bob"]
    with pytest.raises(Forbidden):
        docs.update(alice, "rooms", room["_id"], {"$pull": {"members": "alice"}})
    assert docs.get(alice, "rooms", room["_id"])["members"] == ["alice", "bob"]


def test_403_when_the_caller_can_know_the_document_exists_404_otherwise(docs, principals):
    server = principals.server()
    alice, bob = principals.user("alice"), principals.user("bob")
    writes = {"update": "owner", "delete": "owner", "create": "authenticated"}
    define(docs, principals, "visible", {"read": "public", **writes})
    define(docs, principals, "private", {"read": "owner", **writes})
    for name in ("visible", "private"):
        doc = docs.create(alice, name, {"a": 1})
        expected = Forbidden if name == "visible" else NotFound
        with pytest.raises(expected):
            docs.update(bob, name, doc["_id"], {"a": 2})
        with pytest.raises(expected):
            docs.replace(bob, name, doc["_id"], {"a": 2})
        with pytest.raises(expected):
            docs.delete(bob, name, doc["_id"])
        with pytest.raises(NotFound):
            docs.update(bob, name, "does-not-exist", {"a": 2})
        assert docs.get(server, name, doc["_id"])["a"] == 1
    with pytest.raises(NotFound):
        docs.get(bob, "private", doc["_id"])
    # Denied outright (no user at all): 403 before anything is looked up.
    with pytest.raises(Forbidden):
        docs.delete(principals.client(), "private", "does-not-exist")


def test_scopes_are_enforced(docs, principals):
    define(docs, principals, "notes", {"read": "public", "create": "public", "list": "public"})
    reader = principals.user("alice", scopes={"documents:read"})
    with pytest.raises(Forbidden):
        docs.create(reader, "notes", {"a": 1})
    assert docs.find(reader, "notes", FindParams())["items"] == []
    writer = principals.user("alice", scopes={"documents:write"})
    with pytest.raises(Forbidden):
        docs.find(writer, "notes", FindParams())


# --- leak attempts over HTTP, with real signed-in users ----------------------------------------------------------

@pytest.fixture
def secrets_setup(project, make_user):
    alice, bob = make_user(project), make_user(project)
    assert project.server.put("/v1/collections/authors", json={
        "rules": {"list": "owner", "read": "owner", "create": "authenticated", "update": "owner", "delete": "owner",
                  "aggregate": "owner"}}).status_code == 201
    assert project.server.put("/v1/collections/posts", json={
        "schema": {"type": "object", "properties": {"author": {"type": "string", "x-ref": "authors"},
                                                    "coauthors": {"type": "array",
                                                                  "items": {"type": "string", "x-ref": "authors"}},
                                                    "amount": {"type": "number"}}},
        "rules": {"list": "public", "read": "public", "create": "authenticated", "update": "owner",
                  "delete": "owner", "aggregate": "public"}}).status_code == 201
    assert project.server.put("/v1/collections/diaries", json={
        "rules": {"list": "owner", "read": "owner", "create": "authenticated", "update": "owner", "delete": "owner",
                  "aggregate": "owner"}}).status_code == 201
    a_author = alice.post("/v1/collections/authors/documents", json={"name": "Alice", "ssn": "secret-a"}).get_json()
    b_author = bob.post("/v1/collections/authors/documents", json={"name": "Bob", "ssn": "secret-b"}).get_json()
    for amount in (1, 2, 3):
        alice.post("/v1/collections/diaries/documents", json={"text": f"a{amount}", "amount": amount, "mood": "x"})
    bob.post("/v1/collections/diaries/documents", json={"text": "b1", "amount": 100, "mood": "x"})
    alice.post("/v1/collections/posts/documents", json={"author": a_author["_id"], "coauthors": [b_author["_id"],
                                                                                                  a_author["_id"]]})
    return alice, bob, a_author, b_author


def test_filters_cannot_reach_other_users_documents(project, secrets_setup):
    alice, bob, _, _ = secrets_setup
    for query in ({"_owner": alice.user_id}, {"$or": [{"_owner": alice.user_id}, {"_owner": bob.user_id}]},
                  {"text": {"$regex": "^a"}}, {"$nor": [{"_owner": "nobody"}]}, {"amount": {"$gte": 0}}):
        response = bob.get("/v1/collections/diaries/documents", query_string={"filter": json.dumps(query),
                                                                                 "count": "true"})
        assert response.status_code == 200
        body = response.get_json()
        assert all(d["_owner"] == bob.user_id for d in body["items"]), query
        assert body["total"] == len(body["items"]) <= 1, query


def test_count_and_aggregate_only_see_readable_documents(project, secrets_setup):
    alice, bob, _, _ = secrets_setup
    total = bob.get("/v1/collections/diaries/documents", query_string={"count": "true", "limit": 1}).get_json()
    assert total["total"] == 1
    groups = bob.get("/v1/collections/diaries/aggregate",
                     query_string={"group_by": "mood", "metrics": "count,sum:amount,max:amount"}).get_json()
    assert groups == {"groups": [{"key": "x", "count": 1, "sum:amount": 100, "max:amount": 100}]}
    mine = alice.get("/v1/collections/diaries/aggregate",
                     query_string={"metrics": "count,sum:amount,avg:amount,min:amount",
                                   "filter": '{"amount": {"$gte": 2}}'}).get_json()
    assert mine == {"groups": [{"key": None, "count": 2, "sum:amount": 5, "avg:amount": 2.5, "min:amount": 2}]}
    for query in ({"_owner": alice.user_id}, {"$or": [{"_owner": alice.user_id}, {"_owner": bob.user_id}]},
                  {"$nor": [{"_owner": "nobody"}]}, {"amount": {"$lt": 50}}):
        leaked = bob.get("/v1/collections/diaries/aggregate",
                         query_string={"metrics": "count,sum:amount", "filter": json.dumps(query)}).get_json()
        assert all(g["sum:amount"] in (100, 0) and g["count"] <= 1 for g in leaked["groups"]), (query, leaked)
    assert project.client.get("/v1/collections/diaries/aggregate").status_code == 403
    everything = project.server.get("/v1/collections/diaries/aggregate",
                                    query_string={"metrics": "count"}).get_json()
    assert everything["groups"][0]["count"] == 4


def test_expand_only_reveals_readable_references(project, secrets_setup):
    alice, bob, a_author, b_author = secrets_setup
    as_alice = alice.get("/v1/collections/posts/documents", query_string={"expand": "author,coauthors"}).get_json()
    post = as_alice["items"][0]
    assert post["author"]["name"] == "Alice"
    assert post["coauthors"][0] == b_author["_id"]            # bob's author record stays an id for alice
    assert post["coauthors"][1]["ssn"] == "secret-a"
    as_bob = bob.get("/v1/collections/posts/documents", query_string={"expand": "author,coauthors"}).get_json()
    post = as_bob["items"][0]
    assert post["author"] == a_author["_id"]
    assert post["coauthors"][0]["name"] == "Bob"
    anonymous = project.client.get("/v1/collections/posts/documents", query_string={"expand": "author"}).get_json()
    assert anonymous["items"][0]["author"] == a_author["_id"]
    server = project.server.get("/v1/collections/posts/documents", query_string={"expand": "author"}).get_json()
    assert server["items"][0]["author"]["ssn"] == "secret-a"
    for bad in ("amount", "author.name", "nope", "$where"):
        response = alice.get("/v1/collections/posts/documents", query_string={"expand": bad})
        assert response.status_code == 400, bad


def test_nested_expand(project, secrets_setup):
    alice, _, a_author, _ = secrets_setup
    assert project.server.put("/v1/collections/comments", json={
        "schema": {"type": "object", "properties": {"post": {"type": "string", "x-ref": "posts"}}},
        "rules": {"list": "public", "read": "public"}}).status_code == 201
    post = alice.get("/v1/collections/posts/documents").get_json()["items"][0]
    project.server.post("/v1/collections/comments/documents", json={"post": post["_id"], "text": "nice"})
    page = alice.get("/v1/collections/comments/documents", query_string={"expand": "post.author"}).get_json()
    assert page["items"][0]["post"]["author"]["name"] == "Alice"
    page = project.client.get("/v1/collections/comments/documents", query_string={"expand": "post.author"}).get_json()
    assert page["items"][0]["post"]["author"] == a_author["_id"]


def test_a_cursor_cannot_widen_access(project, secrets_setup):
    alice, bob, _, _ = secrets_setup
    page = alice.get("/v1/collections/diaries/documents", query_string={"limit": 1}).get_json()
    assert page["next_cursor"]
    stolen = bob.get("/v1/collections/diaries/documents", query_string={"limit": 1, "cursor": page["next_cursor"]})
    assert stolen.status_code == 200
    assert all(d["_owner"] == bob.user_id for d in stolen.get_json()["items"])


def test_http_status_codes_for_denied_single_documents(project, secrets_setup):
    alice, bob, a_author, _ = secrets_setup
    post = alice.get("/v1/collections/posts/documents").get_json()["items"][0]
    assert bob.patch(f"/v1/collections/posts/documents/{post['_id']}", json={"x": 1}).status_code == 403
    assert bob.delete(f"/v1/collections/posts/documents/{post['_id']}").status_code == 403
    assert bob.get(f"/v1/collections/authors/documents/{a_author['_id']}").status_code == 404
    assert bob.patch(f"/v1/collections/authors/documents/{a_author['_id']}", json={"x": 1}).status_code == 404
    assert bob.delete(f"/v1/collections/authors/documents/{a_author['_id']}").status_code == 404
    assert alice.get(f"/v1/collections/authors/documents/{a_author['_id']}").status_code == 200
    assert project.client.post("/v1/collections/posts/documents", json={}).status_code == 403


def test_forged_user_tokens_get_no_access(project, secrets_setup):
    alice, _, _, _ = secrets_setup
    forged = project.client.with_token(alice.access_token[:-4] + "AAAA")
    response = forged.get("/v1/collections/diaries/documents")
    assert response.status_code == 401


def test_owner_rule_never_matches_ownerless_documents_for_anonymous_callers(docs, principals):
    # A caller without a user is denied; the rule is never turned into `_owner: null`.
    define(docs, principals, "notes", {"read": "owner", "list": "owner", "create": "public"})
    docs.create(principals.client(), "notes", {"a": 1})
    with pytest.raises(Forbidden):
        docs.find(principals.client(), "notes", FindParams())


def test_python_rule_matching_compares_nested_values_like_mongodb():
    from baas.rules import matches

    rule = {"meta": {"a": 1, "b": True}, "tags": [1, True]}
    assert matches(rule, {"meta": {"a": 1.0, "b": True}, "tags": [1.0, True]})
    assert not matches(rule, {"meta": {"b": True, "a": 1}, "tags": [1, True]}), "embedded documents keep key order"
    assert not matches(rule, {"meta": {"a": 1, "b": 1}, "tags": [1, True]}), "true is not 1 inside documents"
    assert not matches(rule, {"meta": {"a": 1, "b": True}, "tags": [1, 1]}), "true is not 1 inside arrays"
    assert matches({"tags": [1, True]}, {"tags": [[1, True], "x"]}), "an array field matches an equal element"
