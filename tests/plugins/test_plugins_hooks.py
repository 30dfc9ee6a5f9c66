"""Every hook point through the real API: changes re-validated, failure policy, batch items, slow-hook logs."""
from __future__ import annotations

import time

import pytest

import hook_plugin
from baas.plugins import hookimpl
from baas.testing import admin_client, create_project, project_with_plugin

SCHEMA = {"type": "object", "properties": {"stars": {"type": "integer"}, "title": {"type": "string"}}}


@pytest.fixture
def hooked(make_app, monkeypatch):
    monkeypatch.syspath_prepend(__file__.rsplit("/", 1)[0])
    app = make_app({"plugins.modules": ["hook_plugin"]})
    project = project_with_plugin(app, "hook_plugin")
    assert project.server.put("/v1/collections/notes", json={
        "schema": SCHEMA, "rules": {r: "public" for r in ("list", "read", "create", "update", "delete")}}
    ).status_code in (200, 201)
    hook_plugin.calls.clear()
    return app, project


def test_before_hook_changes_are_stored_and_every_write_hook_runs(hooked):
    app, project = hooked
    created = project.server.post("/v1/collections/notes/documents", json={"title": "a", "stamp": True})
    assert created.status_code == 201 and created.get_json()["stamped_by"] == "hook_plugin"
    doc_id = created.get_json()["_id"]
    assert project.server.patch(f"/v1/collections/notes/documents/{doc_id}", json={"title": "b"}).status_code == 200
    assert project.server.put(f"/v1/collections/notes/documents/{doc_id}", json={"title": "c"}).status_code == 200
    assert project.server.delete(f"/v1/collections/notes/documents/{doc_id}").status_code == 204
    writes = [c for c in hook_plugin.calls if c[0] != "query"]
    assert writes == [(kind, "notes", action) for action in ("create", "update", "replace", "delete")
                      for kind in ("before_write", "after_write")]


@pytest.mark.parametrize("sneak, field", [("reserved", "_owner"), ("private", "_secret"), ("schema", "stars")])
def test_before_hook_changes_are_validated_like_a_client_body(hooked, sneak, field):
    app, project = hooked
    response = project.server.post("/v1/collections/notes/documents", json={"title": "x", "sneak": sneak})
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]
    assert project.server.get("/v1/collections/notes/documents").get_json()["items"] == []


def test_rejected_gives_its_status_and_a_crash_a_generic_500_with_nothing_written(hooked, caplog):
    app, project = hooked
    refused = project.server.post("/v1/collections/notes/documents", json={"reject": True})
    assert refused.status_code == 422 and refused.get_json()["message"] == "Refused by the plugin."
    with caplog.at_level("ERROR", logger="baas.plugins"):
        crashed = project.server.post("/v1/collections/notes/documents", json={"crash": True})
    assert crashed.status_code == 500 and crashed.get_json()["code"] == 500
    assert "internal detail" not in crashed.get_data(as_text=True)
    assert "hook_plugin" in caplog.text and "internal detail" in caplog.text
    kept = project.server.post("/v1/collections/notes/documents", json={"keep": True}).get_json()["_id"]
    assert project.server.delete(f"/v1/collections/notes/documents/{kept}").status_code == 409
    assert {d["_id"] for d in project.server.get("/v1/collections/notes/documents").get_json()["items"]} == {kept}


def test_after_hook_failure_is_logged_and_the_write_stands(hooked, caplog):
    app, project = hooked
    with caplog.at_level("ERROR", logger="baas.plugins"):
        response = project.server.post("/v1/collections/notes/documents", json={"after_crash": True})
    assert response.status_code == 201
    assert "hook_plugin" in caplog.text and "baas_after_document_write" in caplog.text


def test_batch_items_are_refused_one_by_one(hooked):
    app, project = hooked
    response = project.server.post("/v1/batch", json={"operations": [
        {"op": "create", "collection": "notes", "document": {"title": "ok"}},
        {"op": "create", "collection": "notes", "document": {"reject": True}},
        {"op": "create", "collection": "notes", "document": {"crash": True}},
        {"op": "create", "collection": "notes", "document": {"title": "ok too"}}]})
    statuses = [r["status"] for r in response.get_json()["results"]]
    assert statuses == [201, 422, 500, 201]
    assert len(project.server.get("/v1/collections/notes/documents").get_json()["items"]) == 2


def test_query_hook_narrows_reads_and_read_hook_redacts(hooked):
    app, project = hooked
    shown = project.server.post("/v1/collections/notes/documents", json={"title": "s", "secret": "x"}).get_json()
    hidden = project.server.post("/v1/collections/notes/documents", json={"title": "h", "hidden": True}).get_json()
    assert "secret" not in shown
    listed = project.server.get("/v1/collections/notes/documents").get_json()["items"]
    assert [d["_id"] for d in listed] == [shown["_id"]] and "secret" not in listed[0]
    assert project.server.get(f"/v1/collections/notes/documents/{hidden['_id']}").status_code == 404
    one = project.server.get(f"/v1/collections/notes/documents/{shown['_id']}").get_json()
    assert "secret" not in one and one["title"] == "s"
    counted = project.server.get("/v1/collections/notes/aggregate").get_json()
    assert counted["groups"][0]["count"] == 1
    # the client's own filter cannot widen what the plugin narrowed
    widened = project.server.get("/v1/collections/notes/documents",
                                 query_string={"filter": '{"hidden": true}'}).get_json()["items"]
    assert widened == []


def test_auth_hooks(hooked, make_user):
    app, project = hooked
    project.client.post("/v1/auth/signup", json={"email": "banned@example.com", "password": "correct horse battery"})
    vetoed = project.client.post("/v1/auth/login", json={"email": "banned@example.com",
                                                          "password": "correct horse battery"})
    assert vetoed.status_code == 403 and vetoed.get_json()["message"] == "This account is banned."
    user = make_user(project)
    assert ("login", user.user_id) not in hook_plugin.calls  # sign-up is not a log-in
    assert project.client.post("/v1/auth/login", json={"email": user.email, "password": "correct horse battery"}
                               ).status_code == 200
    assert ("login", user.user_id) in hook_plugin.calls
    changed = user.post("/v1/auth/me/password", json={"old": "correct horse battery",
                                                     "new": "another fine passphrase"})
    assert changed.status_code in (200, 204), changed.get_json()
    assert ("password", user.user_id, "change") in hook_plugin.calls
    keeper = make_user(project, email="keep-me@example.com")
    assert project.server.delete(f"/v1/users/{keeper.user_id}").status_code == 422
    assert project.server.delete(f"/v1/users/{user.user_id}").status_code == 204
    assert ("user_deleted", project.id, user.user_id) in hook_plugin.calls


class SlowPlugin:
    @hookimpl
    def baas_after_document_write(self, document):
        time.sleep(0.05)  # the slowness under test, not a wait for work


def test_slow_hooks_are_logged_with_plugin_and_duration(make_app, caplog):
    app = make_app({"plugins.slow_hook_ms": 10})
    app.extensions["baas"].hooks.register(SlowPlugin(), name="slowpoke")
    own = create_project(admin_client(app), app.test_client())
    with caplog.at_level("WARNING", logger="baas.plugins"):
        assert own.server.post("/v1/collections/things/documents", json={"a": 1}).status_code == 201
    assert "slowpoke" in caplog.text and "baas_after_document_write" in caplog.text and " ms" in caplog.text
