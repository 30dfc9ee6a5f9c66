"""Which plugins have a hook is looked up once per hook; registering, unregistering, enabling and disabling a
plugin at runtime still take effect on the next request."""
from __future__ import annotations

import pytest

import hook_plugin
from baas.plugins import hookimpl
from baas.testing import admin_client, create_project


class Hide:
    @hookimpl
    def baas_after_document_read(self, documents):
        for doc in documents:
            doc.pop("secret", None)


def test_registering_and_unregistering_in_code_take_effect_at_once(make_app):
    app = make_app()
    hooks = app.extensions["baas"].hooks
    project = create_project(admin_client(app), app.test_client())
    doc = project.server.post("/v1/collections/things/documents", json={"secret": "s", "a": 1}).get_json()
    path = f"/v1/collections/things/documents/{doc['_id']}"
    assert project.server.get(path).get_json()["secret"] == "s"
    assert not hooks.has("baas_after_document_read", project.id)

    hooks.register(Hide(), name="hide")
    assert hooks.has("baas_after_document_read", project.id)
    assert "secret" not in project.server.get(path).get_json()

    hooks.unregister("hide")
    assert not hooks.has("baas_after_document_read", project.id)
    assert project.server.get(path).get_json()["secret"] == "s"

    hooks.register(Hide(), name="hide-again")
    assert "secret" not in project.server.get(path).get_json()
    hooks.pm.unregister(name="hide-again")  # straight through pluggy: the lookup is renewed too
    assert project.server.get(path).get_json()["secret"] == "s"


def test_enabling_and_disabling_for_a_project_take_effect_at_once(make_app, monkeypatch):
    monkeypatch.syspath_prepend(__file__.rsplit("/", 1)[0])
    app = make_app({"plugins.modules": ["hook_plugin"]})
    hooks = app.extensions["baas"].hooks
    admin = admin_client(app)
    project = create_project(admin, app.test_client())
    hook_plugin.calls.clear()
    assert project.server.post("/v1/collections/notes/documents", json={"title": "a"}).status_code == 201
    assert not hook_plugin.calls and not hooks.has("baas_after_document_write", project.id)

    assert admin.post(f"/admin/v1/projects/{project.id}/plugins/hook_plugin", json={}).status_code == 201
    assert hooks.has("baas_after_document_write", project.id)
    assert project.server.post("/v1/collections/notes/documents", json={"title": "b"}).status_code == 201
    assert hook_plugin.calls

    assert admin.delete(f"/admin/v1/projects/{project.id}/plugins/hook_plugin").status_code in (200, 204)
    hook_plugin.calls.clear()
    assert not hooks.has("baas_after_document_write", project.id)
    assert project.server.post("/v1/collections/notes/documents", json={"title": "c"}).status_code == 201
    assert not hook_plugin.calls
