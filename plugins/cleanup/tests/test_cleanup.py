"""cleanup: documents older than their collection's TTL are deleted by the job, through the documents service."""
from __future__ import annotations

import time
from datetime import timedelta

from baas.documents.definitions import storage_name
from baas.testing import ADMIN_TOKEN, ApiClient, create_project
from baas.util import utcnow


def test_old_documents_are_deleted_and_young_ones_kept(make_app):
    app = make_app()
    admin = ApiClient(app.test_client(), {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    project = create_project(admin, app.test_client())
    bad = admin.post(f"/admin/v1/projects/{project.id}/plugins/cleanup",
                     json={"settings": {"collections": {"sessions": 5}}})
    assert bad.status_code == 400 and "collections.sessions" in bad.get_json()["errors"]["settings"]
    assert admin.post(f"/admin/v1/projects/{project.id}/plugins/cleanup",
                      json={"settings": {"collections": {"sessions": 3600, "missing": 60}}}).status_code == 201
    assert admin.post(f"/admin/v1/projects/{project.id}/plugins/audit_log").status_code == 201
    old = project.server.post("/v1/collections/sessions/documents", json={"n": 1}).get_json()
    young = project.server.post("/v1/collections/sessions/documents", json={"n": 2}).get_json()
    other = project.server.post("/v1/collections/keep/documents", json={"n": 3}).get_json()
    db = app.extensions["baas"].mongo.project_db(project.id)
    for name, doc in (("sessions", old), ("keep", other)):
        # a whole-document replace, since the embedded server stores a $set datetime as a string
        stored = db[storage_name(name)].find_one({"_id": doc["_id"]})
        stored["_created"] = utcnow() - timedelta(hours=2)
        db[storage_name(name)].replace_one({"_id": doc["_id"]}, stored)
    jobs = app.extensions["baas"].extra["jobs"]
    jobs.request_run("cleanup.expire", project.id)
    while (run := jobs.claim(time.time(), "test")) is not None:
        assert jobs.execute(run, "test")["status"] == "ok"
    left = {d["_id"] for d in project.server.get("/v1/collections/sessions/documents").get_json()["items"]}
    assert left == {young["_id"]}
    assert project.server.get(f"/v1/collections/keep/documents/{other['_id']}").status_code == 200
    audited = project.server.post("/v1/functions/audit_log.entries", json={"document_id": old["_id"]}).get_json()
    assert audited["result"][0]["action"] == "delete"  # other plugins' hooks saw the job's delete
