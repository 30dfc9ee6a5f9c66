"""`baas projects ...` against a real server."""
import json

from baas.testing import ADMIN_TOKEN, wait_until


def test_create_list_show_update_delete_as_tables(baas, http):
    created = baas("projects", "create", "shop-app", "--name", "Shop App")
    assert created.exit_code == 0, created.output
    assert "Created project shop-app." in created.output
    assert "name:" in created.output and "Shop App" in created.output
    assert http.admin("GET", "/admin/v1/projects/shop-app").json()["name"] == "Shop App"

    listed = baas("projects", "list")
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.output.strip().splitlines()
    assert header.split() == ["ID", "NAME", "CORS", "ORIGINS", "CREATED"]
    row = next(line for line in rows if line.startswith("shop-app "))
    # Columns line up under their headers.
    assert row.index("Shop App") == header.index("NAME")

    shown = baas("projects", "show", "shop-app")
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[0].split() == ["id:", "shop-app"]

    updated = baas("projects", "update", "shop-app", "--name", "Shop", "--cors-origin", "https://shop.example.com",
                   "--cors-origin", "http://localhost:3000")
    assert updated.exit_code == 0, updated.output
    assert "https://shop.example.com, http://localhost:3000" in updated.output
    stored = http.admin("GET", "/admin/v1/projects/shop-app").json()
    assert stored["name"] == "Shop"
    assert stored["settings"]["cors_origins"] == ["https://shop.example.com", "http://localhost:3000"]

    cleared = baas("projects", "update", "shop-app", "--clear-cors-origins")
    assert cleared.exit_code == 0, cleared.output
    assert http.admin("GET", "/admin/v1/projects/shop-app").json()["settings"]["cors_origins"] == []

    deleted = baas("projects", "delete", "shop-app", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert "Deleted project shop-app." in deleted.output
    assert http.admin("GET", "/admin/v1/projects/shop-app").status_code == 404
    assert "shop-app" not in baas("projects", "list").output


def test_json_output(baas, http):
    created = baas("projects", "create", "json-app", "--cors-origin", "https://json.example.com", "--json")
    assert created.exit_code == 0, created.output
    project = json.loads(created.stdout)
    assert project["id"] == "json-app" and project["name"] == "json-app"
    assert project["settings"] == {"cors_origins": ["https://json.example.com"]}

    listed = json.loads(baas("projects", "list", "--json").stdout)
    assert isinstance(listed, list)
    assert "json-app" in [p["id"] for p in listed]

    shown = json.loads(baas("projects", "show", "json-app", "--json").stdout)
    assert shown["id"] == "json-app" and "created_at" in shown

    updated = json.loads(baas("projects", "update", "json-app", "--name", "Renamed", "--json").stdout)
    assert updated["name"] == "Renamed"

    deleted = baas("projects", "delete", "json-app", "--yes", "--json")
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.stdout) == {"id": "json-app", "deleted": True}
    assert http.admin("GET", "/admin/v1/projects/json-app").status_code == 404


def test_delete_asks_first_and_refusal_keeps_the_project(baas, http):
    assert baas("projects", "create", "keep-me").exit_code == 0

    refused = baas("projects", "delete", "keep-me", input="n\n")
    assert refused.exit_code == 1
    assert "Delete project 'keep-me'" in refused.output
    assert "Aborted" in refused.output
    assert http.admin("GET", "/admin/v1/projects/keep-me").status_code == 200

    no_answer = baas("projects", "delete", "keep-me", input="")  # a script without --yes
    assert no_answer.exit_code == 1
    assert http.admin("GET", "/admin/v1/projects/keep-me").status_code == 200

    accepted = baas("projects", "delete", "keep-me", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert http.admin("GET", "/admin/v1/projects/keep-me").status_code == 404


def test_delete_sends_the_id_as_confirmation_and_removes_keys(baas, http):
    assert baas("projects", "create", "gone-soon").exit_code == 0
    key = json.loads(baas("keys", "create", "gone-soon", "--kind", "server", "--json").stdout)["key"]
    assert http.with_key(key, "GET", "/v1/project").status_code == 200  # the key works

    assert baas("projects", "delete", "gone-soon", "--yes").exit_code == 0

    def refused():
        response = http.with_key(key, "GET", "/v1/project")
        return response.status_code == 401 and response.json()["message"] == "Unknown API key."

    wait_until(refused, timeout=5, message="the deleted project's key to be refused")


def test_server_errors_are_one_line(baas, one_line_error):
    one_line_error(baas("projects", "create", "Bad_Id"), "A project id is 3 to 40 characters", "(HTTP 400)")
    assert baas("projects", "create", "twice").exit_code == 0
    one_line_error(baas("projects", "create", "twice"), "already exists", "(HTTP 409)")
    one_line_error(baas("projects", "show", "missing"), "No project 'missing'.", "(HTTP 404)")
    one_line_error(baas("projects", "update", "missing", "--name", "x"), "No project 'missing'.")
    one_line_error(baas("projects", "delete", "missing", "--yes"), "No project 'missing'.")
    # Field errors from validation are named in the line.
    one_line_error(baas("projects", "update", "twice", "--cors-origin", ""), "settings.cors_origins", "(HTTP 422)")
    # In JSON mode errors still go out as one line (on stderr), with nothing on stdout.
    result = baas("projects", "show", "missing", "--json")
    one_line_error(result, "No project 'missing'.")
    assert result.stdout == ""


def test_ids_cannot_escape_their_path_segment(baas, http, one_line_error):
    assert baas("projects", "create", "victim").exit_code == 0
    # The server decodes %2F before routing, so 'victim/keys' would turn `show` into listing the keys.
    one_line_error(baas("projects", "show", "victim/keys"), "'victim/keys' is not a valid project id")
    one_line_error(baas("projects", "delete", "..", "--yes"), "is not a valid project id")
    one_line_error(baas("keys", "revoke", "victim", "../../other", "--yes"), "is not a valid key id")
    assert http.admin("GET", "/admin/v1/projects/victim").status_code == 200


def test_update_needs_something_to_change(baas):
    assert baas("projects", "create", "same-app").exit_code == 0
    result = baas("projects", "update", "same-app")
    assert result.exit_code == 2
    assert "Nothing to change" in result.output


def test_empty_lists_say_so(baas):
    assert baas("projects", "create", "no-keys").exit_code == 0
    result = baas("keys", "list", "no-keys")
    assert result.exit_code == 0
    assert "Project no-keys has no keys" in result.output
    assert json.loads(baas("keys", "list", "no-keys", "--json").stdout) == []


def test_admin_token_goes_only_in_the_header(baas, server):
    result = baas("projects", "list", "--json")
    assert result.exit_code == 0
    assert ADMIN_TOKEN not in result.output
    assert ADMIN_TOKEN not in server.output()
