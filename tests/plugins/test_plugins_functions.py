"""POST /v1/functions/{name}: permissions, input validation, failure policy, rate limits, OpenAPI entries."""
from __future__ import annotations

import pytest

from baas.testing import admin_client, create_project, project_with_plugin, sign_up_user


@pytest.fixture
def fn_app(make_app, monkeypatch):
    monkeypatch.syspath_prepend(__file__.rsplit("/", 1)[0])
    app = make_app({"plugins.modules": ["functions_plugin"]})
    return app, admin_client(app), project_with_plugin(app, "functions_plugin")


def test_functions_answer_results_and_check_input(fn_app):
    app, admin, project = fn_app
    ok = project.client.post("/v1/functions/functions_plugin.add", json={"a": 2, "b": 3})
    assert ok.status_code == 200 and ok.get_json() == {"result": 5}
    bad = project.client.post("/v1/functions/functions_plugin.add", json={"a": "2"})
    assert bad.status_code == 400 and set(bad.get_json()["errors"]) == {"(body)", "a"}
    assert project.client.post("/v1/functions/functions_plugin.add", data="[1]",
                               content_type="application/json").status_code == 400
    assert project.client.post("/v1/functions/nope.nothing", json={}).status_code == 404
    for body in ('{"a": NaN, "b": 1}', "[" * 5000, '{"a": 1'):
        refused = project.client.post("/v1/functions/functions_plugin.add", data=body,
                                      content_type="application/json")
        assert refused.status_code == 400 and refused.get_json()["code"] == 400
    assert project.client.post("/v1/functions/functions_plugin.add", data="a=1",
                               content_type="application/x-www-form-urlencoded").status_code == 415


def test_function_permissions(fn_app):
    app, admin, project = fn_app
    assert project.client.post("/v1/functions/functions_plugin.whoami", json={}).status_code == 401
    user = sign_up_user(project)
    me = user.post("/v1/functions/functions_plugin.whoami", json={}).get_json()["result"]
    assert me == {"user": user.user_id, "project": project.id, "plugin": "functions_plugin"}
    assert user.post("/v1/functions/functions_plugin.moderate", json={}).status_code == 403
    moderator = sign_up_user(project, roles=["moderator"])
    assert moderator.post("/v1/functions/functions_plugin.moderate", json={}).get_json() == {"result": "moderated"}
    assert user.post("/v1/functions/functions_plugin.save_note", json={"title": "t"}).status_code == 403
    bad = project.server.post("/v1/functions/functions_plugin.save_note", json={"titel": "t"})
    assert bad.status_code == 400 and "title" in bad.get_json()["errors"]
    saved = project.server.post("/v1/functions/functions_plugin.save_note", json={"title": "t"}).get_json()["result"]
    assert project.server.get(f"/v1/collections/notes/documents/{saved}").get_json()["title"] == "t"


def test_functions_of_plugins_not_enabled_in_a_project_are_not_found(fn_app):
    app, admin, project = fn_app
    other = create_project(admin, app.test_client())
    assert other.client.post("/v1/functions/functions_plugin.add", json={"a": 1, "b": 1}).status_code == 404


def test_rejected_crash_and_rate_limit(fn_app, caplog):
    app, admin, project = fn_app
    refused = project.client.post("/v1/functions/functions_plugin.refuse", json={})
    assert refused.status_code == 409 and refused.get_json()["message"] == "Not today."
    with caplog.at_level("ERROR", logger="baas.plugins"):
        crashed = project.client.post("/v1/functions/functions_plugin.explode", json={})
    assert crashed.status_code == 500 and "secret internals" not in crashed.get_data(as_text=True)
    assert "functions_plugin" in caplog.text and "secret internals" in caplog.text
    statuses = [project.client.post("/v1/functions/functions_plugin.limited").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_each_function_is_an_operation_in_the_openapi_document(fn_app):
    app, admin, project = fn_app
    spec = app.test_client().get("/openapi.json").get_json()
    add = spec["paths"]["/v1/functions/functions_plugin.add"]["post"]
    assert add["requestBody"]["content"]["application/json"]["schema"]["required"] == ["a", "b"]
    assert add["summary"] == "Add two numbers."
    assert "429" in spec["paths"]["/v1/functions/functions_plugin.limited"]["post"]["responses"]
    assert spec["paths"]["/v1/functions/functions_plugin.save_note"]["post"]["security"] == [{"apiKey": []}]
    from openapi_spec_validator import validate
    validate(spec)
