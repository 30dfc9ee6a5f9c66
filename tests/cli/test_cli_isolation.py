"""Issue 2's "Done when": the CLI creates a second project and a key that reads nothing of the first project."""
import json

import pytest
import requests

from baas.testing import ADMIN_TOKEN


@pytest.fixture
def first_project(http):
    """Project A, made directly through the admin API, with a server key and one stored document."""
    assert http.admin("POST", "/admin/v1/projects", json={"id": "first-app"}).status_code == 201
    key = http.admin("POST", "/admin/v1/projects/first-app/keys", json={"kind": "server"}).json()["key"]
    return {"id": "first-app", "server_key": key}


@pytest.fixture
def second_project(baas):
    """Project B and its keys, made with the CLI."""
    assert baas("projects", "create", "second-app", "--name", "Second").exit_code == 0
    keys = {}
    for kind in ("client", "server"):
        result = baas("keys", "create", "second-app", "--kind", kind, "--json")
        assert result.exit_code == 0, result.output
        keys[kind] = json.loads(result.stdout)["key"]
    return {"id": "second-app", **keys}


def test_the_new_keys_select_only_their_own_project(http, first_project, second_project):
    for kind in ("client", "server"):
        described = http.with_key(second_project[kind], "GET", "/v1/project")
        assert described.status_code == 200, described.text
        assert described.json()["id"] == "second-app"
        assert described.json()["key"]["kind"] == kind
    # The first project's key list knows nothing of the new keys, and the other way round.
    first_keys = http.admin("GET", "/admin/v1/projects/first-app/keys").json()
    second_keys = http.admin("GET", "/admin/v1/projects/second-app/keys").json()
    assert {k["project_id"] for k in first_keys} == {"first-app"}
    assert {k["project_id"] for k in second_keys} == {"second-app"}
    assert not {k["id"] for k in first_keys} & {k["id"] for k in second_keys}


def test_the_new_keys_cannot_reach_the_admin_api(http, first_project, second_project, bare_baas, server,
                                                 one_line_error):
    for kind in ("client", "server"):
        key = second_project[kind]
        for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"},
                        {"X-API-Key": key, "Authorization": f"Bearer {key}"}):
            for path in ("/admin/v1/projects", "/admin/v1/projects/first-app", "/admin/v1/projects/first-app/keys"):
                response = requests.get(server.url + path, headers=headers, timeout=10)
                assert response.status_code == 401, (kind, headers.keys(), path, response.text)
                assert "baas_" not in response.text
        # Nor through the CLI, used with a project key in place of the admin token.
        one_line_error(bare_baas("keys", "list", "first-app", "--url", server.url, "--token", key),
                       "Invalid admin token.")
    assert http.admin("GET", "/admin/v1/projects/first-app").status_code == 200  # and the admin token still works
    assert ADMIN_TOKEN not in json.dumps(second_project)


def test_the_new_keys_read_none_of_the_first_projects_documents(http, first_project, second_project):
    """Needs the documents API (/v1/collections/...); it fails until that exists."""
    created = http.with_key(first_project["server_key"], "POST", "/v1/collections/notes/documents",
                            json={"title": "first-app's secret"})
    assert created.status_code == 201, created.text
    doc_id = created.json()["_id"]

    for kind in ("client", "server"):
        key = second_project[kind]
        listed = http.with_key(key, "GET", "/v1/collections/notes/documents")
        assert listed.status_code in (200, 403, 404), listed.text
        assert "first-app's secret" not in listed.text
        if listed.status_code == 200:
            assert listed.json()["items"] == []
        filtered = http.with_key(key, "GET", "/v1/collections/notes/documents",
                                 params={"filter": json.dumps({"_id": doc_id})})
        assert "first-app's secret" not in filtered.text
        for method, kwargs in (("GET", {}), ("PATCH", {"json": {"title": "taken"}}),
                               ("PUT", {"json": {"title": "taken"}}), ("DELETE", {})):
            response = http.with_key(key, method, f"/v1/collections/notes/documents/{doc_id}", **kwargs)
            assert response.status_code in (403, 404), (kind, method, response.text)
            assert "first-app's secret" not in response.text
        counted = http.with_key(key, "GET", "/v1/collections/notes/aggregate", params={"metrics": "count"})
        assert "first-app's secret" not in counted.text
        if counted.status_code == 200:
            assert all(group.get("count", 0) == 0 for group in counted.json().get("groups", []))

    # The first project's document is untouched.
    again = http.with_key(first_project["server_key"], "GET", f"/v1/collections/notes/documents/{doc_id}")
    assert again.status_code == 200 and again.json()["title"] == "first-app's secret"
