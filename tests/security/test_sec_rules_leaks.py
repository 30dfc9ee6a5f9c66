"""Access rules hold through expand, batch, count and aggregate."""
import json

from security_helpers import assert_error


def test_expand_does_not_reveal_unreadable_documents(project, make_user):
    s = project.server
    assert s.put("/v1/collections/secrets", json={"rules": {"create": "authenticated", "read": "owner",
                                                            "list": "owner"}}).status_code in (200, 201)
    assert s.put("/v1/collections/posts", json={
        "schema": {"type": "object", "properties": {"ref": {"type": "string", "x-ref": "secrets"},
                                                    "refs": {"type": "array", "items": {"type": "string",
                                                                                        "x-ref": "secrets"}}}},
        "rules": {"create": "authenticated", "read": "public", "list": "public"}}).status_code in (200, 201)
    alice, bob = make_user(project), make_user(project)
    secret = alice.post("/v1/collections/secrets/documents", json={"pin": "1234"}).get_json()
    assert bob.post("/v1/collections/posts/documents", json={"ref": secret["_id"], "refs": [secret["_id"]]}).status_code == 201
    for path in ("ref", "refs"):
        page = bob.get("/v1/collections/posts/documents", query_string={"expand": path})
        assert page.status_code == 200, page.get_json()
        assert "1234" not in page.get_data(as_text=True)
    page = alice.get("/v1/collections/posts/documents", query_string={"expand": "ref"})
    assert "1234" in page.get_data(as_text=True)  # control: the owner does see it expanded


def test_batch_respects_rules_for_client_keys(project, make_user):
    project.server.put("/v1/collections/posts", json={"rules": {"create": "authenticated", "read": "owner",
                                                                "list": "owner", "update": "owner",
                                                                "delete": "owner"}})
    alice, bob = make_user(project), make_user(project)
    doc = alice.post("/v1/collections/posts/documents", json={"t": "alice"}).get_json()
    operations = [{"op": "update", "collection": "posts", "id": doc["_id"], "document": {"t": "bob"}},
                  {"op": "replace", "collection": "posts", "id": doc["_id"], "document": {"t": "bob"}},
                  {"op": "delete", "collection": "posts", "id": doc["_id"]},
                  {"op": "create", "collection": "posts", "document": {"_id": doc["_id"], "t": "bob"}}]
    response = bob.post("/v1/batch", json={"operations": operations})
    assert response.status_code == 200, response.get_json()
    for result in response.get_json()["results"]:
        assert result["status"] in (403, 404, 409), result
        assert "alice" not in json.dumps(result)
    assert alice.get(f"/v1/collections/posts/documents/{doc['_id']}").get_json()["t"] == "alice"
    # anonymous client (no token) cannot create in an authenticated-only collection via batch either
    response = project.client.post("/v1/batch", json={"operations": [operations[3] | {"document": {"t": "x"}}]})
    assert response.get_json()["results"][0]["status"] in (401, 403)
    assert len(project.server.get("/v1/collections/posts/documents").get_json()["items"]) == 1


def test_role_rule_with_forged_roles_in_profile_data(project, make_user):
    project.server.put("/v1/collections/staff", json={"rules": {"list": "role:staff", "read": "role:staff"}})
    project.server.post("/v1/collections/staff/documents", json={"memo": "payroll"})
    user = make_user(project)
    user.patch("/v1/auth/me", json={"data": {"roles": ["staff"]}})
    refreshed = project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}).get_json()
    fresh = project.client.with_token(refreshed["access_token"])
    response = fresh.get("/v1/collections/staff/documents")
    assert_error(response, 403, 404)
    staff = make_user(project, roles=["staff"])
    assert staff.get("/v1/collections/staff/documents").get_json()["items"][0]["memo"] == "payroll"


def test_document_not_found_and_forbidden_do_not_leak_contents(project, make_user):
    project.server.put("/v1/collections/posts", json={"rules": {"create": "authenticated", "read": "owner",
                                                                "update": "owner", "delete": "owner"}})
    alice, bob = make_user(project), make_user(project)
    doc = alice.post("/v1/collections/posts/documents", json={"t": "top secret text"}).get_json()
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        kwargs = {"json": {"t": "x"}} if method in ("PUT", "PATCH") else {}
        response = bob.open(method, f"/v1/collections/posts/documents/{doc['_id']}", **kwargs)
        assert_error(response, 403, 404)
        assert "top secret" not in response.get_data(as_text=True)
        assert "ETag" not in response.headers
    assert alice.get(f"/v1/collections/posts/documents/{doc['_id']}").get_json()["t"] == "top secret text"
