"""Discovery (entry points, modules, folders), error isolation, strict mode, misspelled hooks, the admin API."""
from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest

from baas.config import ConfigError
from baas.plugins import manager as manager_module
from baas.plugins.manager import HookManager


def write_plugin(folder, name, body):
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


GOOD = """
    from baas.plugins import hookimpl, Rejected
    baas_plugin_settings = {"type": "object", "additionalProperties": False,
                            "properties": {"max_title": {"type": "integer", "minimum": 1}}}

    @hookimpl
    def baas_before_document_write(ctx, collection, document):
        limit = ctx.settings.get("max_title")
        if document and limit and len(document.get("title", "")) > limit:
            raise Rejected("title too long", status=400)
    """


def test_folder_plugins_load_and_broken_ones_are_listed_with_their_error(tmp_path, caplog):
    write_plugin(tmp_path, "good_one", GOOD)
    write_plugin(tmp_path, "broken_import", "import no_such_module_anywhere\n")
    write_plugin(tmp_path, "misspelled", """
        from baas.plugins import hookimpl
        @hookimpl
        def baas_after_documnet_write(document):
            pass
        """)
    with caplog.at_level("ERROR", logger="baas.plugins"):
        hooks = HookManager(folders=[str(tmp_path)])
    assert hooks.available("good_one") is not None
    assert "no_such_module_anywhere" in hooks.plugins["broken_import"].error
    assert "baas_after_documnet_write" in hooks.plugins["misspelled"].error
    assert hooks.available("misspelled") is None and not hooks.pm.has_plugin("misspelled")
    assert "misspelled" in caplog.text and "broken_import" in caplog.text


def test_strict_mode_fails_start_naming_the_plugin(tmp_path):
    write_plugin(tmp_path, "broken_import", "import no_such_module_anywhere\n")
    with pytest.raises(ConfigError, match="broken_import"):
        HookManager(folders=[str(tmp_path)], strict=True)


def test_entry_point_and_module_discovery(tmp_path, monkeypatch):
    write_plugin(tmp_path, "ep_plugin_mod", GOOD)
    write_plugin(tmp_path, "module_plugin_mod", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = EntryPoint(name="from-entry-point", value="ep_plugin_mod", group="baas.plugins")
    monkeypatch.setattr(manager_module, "entry_points",
                        lambda group: [point] if group == "baas.plugins" else [])
    hooks = HookManager(modules=["module_plugin_mod"], folders=[])
    assert hooks.plugins["from-entry-point"].source == "entry point"
    assert hooks.plugins["module_plugin_mod"].source == "module"
    assert hooks.available("from-entry-point") and hooks.available("module_plugin_mod")
    sys.modules.pop("ep_plugin_mod", None)
    sys.modules.pop("module_plugin_mod", None)


def test_bundled_plugins_are_discovered_by_default():
    hooks = HookManager()
    for name in ("audit_log", "webhooks", "cleanup"):
        assert hooks.available(name) is not None, hooks.plugins.get(name)
        assert hooks.plugins[name].source == "folder"
    assert set(hooks.plugins) == {"audit_log", "webhooks", "cleanup"}  # not plugins/conftest.py
    assert "audit_log.entries" in hooks.functions()
    assert {"webhooks.deliver", "audit_log.retention", "cleanup.expire"} <= set(hooks.jobs())


def test_admin_api_lists_plugins_and_enables_with_checked_settings(make_app, tmp_path):
    write_plugin(tmp_path, "title_limit", GOOD)
    write_plugin(tmp_path, "broken_import", "import no_such_module_anywhere\n")
    from baas.testing import ADMIN_TOKEN, ApiClient, create_project

    app = make_app({"plugins.folders": [str(tmp_path)]})
    admin = ApiClient(app.test_client(), {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    project = create_project(admin, app.test_client())
    other = create_project(admin, app.test_client())
    listed = {p["name"]: p for p in admin.get("/admin/v1/plugins").get_json()}
    assert listed["broken_import"]["status"] == "failed" and "no_such_module" in listed["broken_import"]["error"]
    assert listed["title_limit"]["status"] == "loaded"
    assert listed["title_limit"]["hooks"] == ["baas_before_document_write"]

    url = f"/admin/v1/projects/{project.id}/plugins/title_limit"
    bad = admin.post(url, json={"settings": {"max_titel": 3}})
    assert bad.status_code == 400 and "max_titel" in bad.get_json()["errors"]["settings"]
    bad = admin.post(url, json={"settings": {"max_title": 0}})
    assert bad.status_code == 400 and "max_title" in bad.get_json()["message"]
    assert admin.post(f"/admin/v1/projects/{project.id}/plugins/broken_import").status_code == 409
    assert admin.post(f"/admin/v1/projects/{project.id}/plugins/nope").status_code == 404
    # before enabling: the plugin does not run
    assert project.server.post("/v1/collections/notes/documents", json={"title": "long title"}).status_code == 201
    created = admin.post(url, json={"settings": {"max_title": 3}})
    assert created.status_code == 201 and created.get_json()["settings"] == {"max_title": 3}
    assert admin.post(url, json={"settings": {"max_title": 4}}).status_code == 200
    assert [p["plugin"] for p in admin.get(f"/admin/v1/projects/{project.id}/plugins").get_json()] == ["title_limit"]
    refused = project.server.post("/v1/collections/notes/documents", json={"title": "long title"})
    assert refused.status_code == 400 and refused.get_json()["message"] == "title too long"
    # another project does not see the plugin's hooks
    assert other.server.post("/v1/collections/notes/documents", json={"title": "long title"}).status_code == 201
    assert admin.delete(url).status_code == 204
    assert admin.delete(url).status_code == 404
    assert project.server.post("/v1/collections/notes/documents", json={"title": "long title"}).status_code == 201


def test_operator_settings_must_be_mappings_per_plugin(make_app):
    with pytest.raises(ConfigError, match="plugins.settings.webhooks"):
        make_app({"plugins.settings": {"webhooks": ["10.0.0.0/8"]}})
