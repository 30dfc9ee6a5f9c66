"""`baas keys ...` against a real server: keys made by the CLI work, revoked ones stop working."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from baas.testing import wait_until


@pytest.fixture
def app_project(baas):
    assert baas("projects", "create", "key-app").exit_code == 0
    return "key-app"


def _refused(http, key, reason):
    def check():
        response = http.with_key(key, "GET", "/v1/project")
        return response.status_code == 401 and reason in response.json()["message"]
    return check


def _plaintext_from_table(output: str, prefix: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith(prefix))


def test_create_prints_the_key_once_and_it_works(baas, http, app_project):
    result = baas("keys", "create", app_project, "--kind", "client", "--name", "ios app",
                  "--scope", "documents:read", "--scope", "auth", "--expires-in", "30d")
    assert result.exit_code == 0, result.output
    assert "Created client key key_" in result.output
    assert "shown only once" in result.output
    key = _plaintext_from_table(result.output, "baas_ck_")
    assert len(key) > 30

    described = http.with_key(key, "GET", "/v1/project")
    assert described.status_code == 200, described.text
    assert described.json()["id"] == app_project
    assert described.json()["key"]["kind"] == "client"
    assert described.json()["key"]["scopes"] == ["auth", "documents:read"]

    stored = http.admin("GET", f"/admin/v1/projects/{app_project}/keys").json()
    assert len(stored) == 1
    assert stored[0]["name"] == "ios app"
    expires = datetime.fromisoformat(stored[0]["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=29, hours=23) < expires - datetime.now(timezone.utc) <= timedelta(days=30)

    listed = baas("keys", "list", app_project)
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.strip().splitlines()
    assert header.split() == ["ID", "KIND", "NAME", "PREFIX", "SCOPES", "STATUS", "CREATED", "EXPIRES"]
    assert stored[0]["id"] in row and stored[0]["prefix"] in row and "active" in row
    assert "auth, documents:read" in row
    assert row.index(stored[0]["prefix"]) == header.index("PREFIX")
    assert key not in listed.output


def test_json_output(baas, http, app_project):
    result = baas("keys", "create", app_project, "--kind", "server", "--expires-at", "2030-01-31T12:00:00+01:00",
                  "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)  # stdout is exactly one JSON document
    assert created["kind"] == "server" and created["key"].startswith("baas_sk_")
    assert created["expires_at"].startswith("2030-01-31T11:00:00")
    assert "shown only once" in result.stderr
    assert http.with_key(created["key"], "GET", "/v1/project").json()["key"]["kind"] == "server"

    listed = json.loads(baas("keys", "list", app_project, "--json").stdout)
    assert [k["id"] for k in listed] == [created["id"]]
    assert all("key" not in k and "hash" not in k for k in listed)


def test_expiry_and_scope_mistakes(baas, app_project, one_line_error):
    naive = baas("keys", "create", app_project, "--kind", "client", "--expires-at", "2030-01-01T00:00:00")
    assert naive.exit_code == 2 and "no time zone" in naive.output
    both = baas("keys", "create", app_project, "--kind", "client", "--expires-at", "2030-01-01T00:00:00Z",
                "--expires-in", "1d")
    assert both.exit_code == 2 and "not both" in both.output
    bad_duration = baas("keys", "create", app_project, "--kind", "client", "--expires-in", "soon")
    assert bad_duration.exit_code == 2 and "not a duration" in bad_duration.output
    one_line_error(baas("keys", "create", app_project, "--kind", "client", "--expires-at", "2001-01-01T00:00:00Z"),
                   "expires_at must be in the future")
    one_line_error(baas("keys", "create", app_project, "--kind", "client", "--scope", "root"),
                   "scopes", "Must be one of")
    one_line_error(baas("keys", "create", "no-such-project", "--kind", "client"), "No project 'no-such-project'.")
    one_line_error(baas("keys", "list", "no-such-project"), "No project 'no-such-project'.")
    assert baas("keys", "list", app_project, "--json").stdout.strip() == "[]"


def test_revoke_asks_first_then_the_key_stops_working(baas, http, app_project, one_line_error):
    created = json.loads(baas("keys", "create", app_project, "--kind", "client", "--json").stdout)
    key, key_id = created["key"], created["id"]

    refused = baas("keys", "revoke", app_project, key_id, input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert http.with_key(key, "GET", "/v1/project").status_code == 200

    revoked = baas("keys", "revoke", app_project, key_id, input="y\n")
    assert revoked.exit_code == 0, revoked.output
    assert f"Revoked key {key_id}." in revoked.output
    assert "revoked" in revoked.output
    wait_until(_refused(http, key, "revoked"), timeout=5, message="the revoked key to be refused")
    assert http.admin("GET", f"/admin/v1/projects/{app_project}/keys/{key_id}").json()["status"] == "revoked"

    one_line_error(baas("keys", "revoke", app_project, "key_nope", "--yes"), "No key 'key_nope'", "(HTTP 404)")


def test_rotate_with_grace_keeps_the_old_key_working(baas, http, app_project):
    created = json.loads(baas("keys", "create", app_project, "--kind", "server", "--name", "backend",
                              "--json").stdout)

    result = baas("keys", "rotate", app_project, created["id"], "--grace", "1h", "--yes")
    assert result.exit_code == 0, result.output
    assert "shown only once" in result.output
    new_key = _plaintext_from_table(result.output, "baas_sk_")
    assert new_key != created["key"]
    assert f"The old key {created['id']} keeps working until" in result.output

    assert http.with_key(new_key, "GET", "/v1/project").json()["id"] == app_project
    assert http.with_key(created["key"], "GET", "/v1/project").status_code == 200

    keys = {k["id"]: k for k in http.admin("GET", f"/admin/v1/projects/{app_project}/keys").json()}
    old = keys[created["id"]]
    replacement = keys[old["rotated_to"]]
    assert replacement["rotated_from"] == created["id"] and replacement["name"] == "backend"
    expires = datetime.fromisoformat(old["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=55) < expires - datetime.now(timezone.utc) <= timedelta(hours=1)


def test_rotate_without_grace_asks_and_ends_the_old_key(baas, http, app_project):
    created = json.loads(baas("keys", "create", app_project, "--kind", "client", "--json").stdout)

    refused = baas("keys", "rotate", app_project, created["id"], input="n\n")
    assert refused.exit_code == 1 and "stops working immediately" in refused.output
    assert len(http.admin("GET", f"/admin/v1/projects/{app_project}/keys").json()) == 1

    result = baas("keys", "rotate", app_project, created["id"], "--json", input="y\n")
    assert result.exit_code == 0, result.output
    rotated = json.loads(result.stdout)
    assert rotated["rotated_from"] == created["id"]
    assert rotated["previous"]["status"] == "revoked"
    assert http.with_key(rotated["key"], "GET", "/v1/project").status_code == 200
    wait_until(_refused(http, created["key"], "revoked"), timeout=5, message="the rotated key to be refused")


def test_rotate_grace_out_of_range_is_the_servers_message(baas, app_project, one_line_error):
    created = json.loads(baas("keys", "create", app_project, "--kind", "client", "--json").stdout)
    one_line_error(baas("keys", "rotate", app_project, created["id"], "--grace", "31d", "--yes"),
                   "grace_seconds", "(HTTP 422)")
