"""Plugins named in config are loaded by module path, may refuse writes, and cannot break requests."""
import pytest

import sample_plugin
from baas.config import ConfigError
from baas.testing import create_project


def test_plugin_from_config_refuses_and_observes_writes(make_app, caplog):
    app = make_app({"plugins.enabled": ["sample_plugin"]})
    client = app.test_client()
    from baas.testing import ADMIN_TOKEN, ApiClient

    admin = ApiClient(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with caplog.at_level("ERROR", logger="baas.plugins"):
        project = create_project(admin, client)  # the broken baas_project_created hook is isolated
    assert "sample_plugin" in caplog.text and "baas_project_created" in caplog.text

    refused = project.server.post("/v1/collections/notes/documents", json={"forbidden": True})
    assert refused.status_code == 422
    assert refused.get_json()["message"] == "Documents may not be forbidden."
    assert project.server.get("/v1/collections/notes/documents").get_json()["items"] == []

    created = project.server.post("/v1/collections/notes/documents", json={"title": "ok"})
    assert created.status_code == 201
    assert ("notes", "create", created.get_json()["_id"]) in sample_plugin.created


def test_blocked_plugin_is_not_loaded(make_app):
    app = make_app({"plugins.enabled": ["sample_plugin"], "plugins.blocked": ["sample_plugin"]})
    assert not app.extensions["baas"].hooks.pm.has_plugin("sample_plugin")


def test_unknown_plugin_is_a_config_error_naming_it_when_strict(make_app):
    with pytest.raises(ConfigError, match="no_such_plugin_xyz"):
        make_app({"plugins.enabled": ["no_such_plugin_xyz"], "plugins.strict": True})
