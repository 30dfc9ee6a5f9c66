"""audit_log: who changed what, readable with the server key only, with a retention job."""
from __future__ import annotations

import time

from baas.jobs.service import JobRunner
from baas.testing import project_with_plugin, sign_up_user
from baas_plugins.audit_log import diff


def test_writes_are_audited_with_a_diff_and_only_the_server_key_reads_them(make_app):
    app = make_app()
    project = project_with_plugin(app, "audit_log", {"retention_days": 30})
    project.server.put("/v1/collections/notes", json={"rules": {"create": "authenticated", "update": "owner",
                                                                "read": "authenticated", "list": "authenticated"}})
    user = sign_up_user(project)
    doc = user.post("/v1/collections/notes/documents", json={"title": "a", "tags": ["x"]}).get_json()
    user.patch(f"/v1/collections/notes/documents/{doc['_id']}", json={"title": "b"})
    project.server.delete(f"/v1/collections/notes/documents/{doc['_id']}")
    entries = project.server.post("/v1/functions/audit_log.entries", json={"document_id": doc["_id"]})
    assert entries.status_code == 200
    found = entries.get_json()["result"]
    assert [e["action"] for e in found] == ["delete", "update", "create"]
    assert found[2]["principal"] == {"kind": "client", "key_id": found[2]["principal"]["key_id"],
                                     "user_id": user.user_id}
    assert found[1]["diff"] == {"changed": {"title": ["a", "b"]}}
    assert found[0]["principal"]["kind"] == "server"
    assert user.post("/v1/functions/audit_log.entries", json={}).status_code == 403
    assert project.client.get("/v1/collections/_audit_log_entries/documents").status_code in (400, 404)

    db = app.extensions["baas"].mongo.project_db(project.id)
    db["_audit_log_entries"].update_many({"action": "create"}, {"$set": {"at": time.time() - 31 * 86400}})
    jobs = app.extensions["baas"].extra["jobs"]
    jobs.request_run("audit_log.retention", project.id)
    while (run := jobs.claim(time.time(), "test")) is not None:
        jobs.execute(run, "test")
    remaining = project.server.post("/v1/functions/audit_log.entries", json={}).get_json()["result"]
    assert "create" not in [e["action"] for e in remaining] and len(remaining) == 2


def test_diff():
    assert diff({"a": 1, "b": 2, "_rev": "x"}, {"a": 1, "b": 3, "c": 4, "_rev": "y"}) == {
        "added": {"c": 4}, "changed": {"b": [2, 3]}}
    assert diff({"a": 1}, None) == {"removed": {"a": 1}}
