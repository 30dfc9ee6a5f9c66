"""`baas plugins|functions|jobs ...` against a real `baas serve` (with its bundled plugins)."""
from __future__ import annotations

import json

from baas.testing import ADMIN_TOKEN, wait_until
from baas_cli.main import cli
from click.testing import CliRunner


def run(server, *args):
    result = CliRunner().invoke(cli, [str(a) for a in args], env={"BAAS_URL": server.url,
                                                                  "BAAS_ADMIN_TOKEN": ADMIN_TOKEN},
                                catch_exceptions=False)
    return result


def test_plugins_functions_and_jobs_commands(server_process):
    server = server_process({"worker": {"run_in_serve": "always"}})  # `baas serve` runs the jobs itself
    assert run(server, "projects", "create", "cli-plugins").exit_code == 0
    listed = run(server, "plugins", "list")
    assert listed.exit_code == 0 and "audit_log" in listed.output and "loaded" in listed.output
    as_json = json.loads(run(server, "plugins", "list", "--json").output)
    assert {"audit_log", "webhooks", "cleanup"} <= {p["name"] for p in as_json}

    bad = run(server, "plugins", "enable", "audit_log", "--project", "cli-plugins", "--settings",
              '{"retention_dayz": 3}')
    assert bad.exit_code != 0 and "retention_dayz" in bad.output
    ok = run(server, "plugins", "enable", "audit_log", "--project", "cli-plugins", "--settings",
             '{"retention_days": 3}')
    assert ok.exit_code == 0, ok.output
    enabled = json.loads(run(server, "plugins", "list", "--project", "cli-plugins", "--json").output)
    assert enabled[0]["plugin"] == "audit_log" and enabled[0]["settings"] == {"retention_days": 3}

    functions = run(server, "functions", "list", "--project", "cli-plugins")
    assert "audit_log.entries" in functions.output and "server" in functions.output
    jobs = run(server, "jobs", "list")
    assert "audit_log.retention" in jobs.output and "cron 17 3 * * *" in jobs.output
    queued = run(server, "jobs", "run", "audit_log.retention", "--project", "cli-plugins")
    assert queued.exit_code == 0 and "queued" in queued.output
    history = wait_until(lambda: [r for r in json.loads(run(server, "jobs", "history", "audit_log.retention",
                                                            "--json").output) if r["status"] == "ok"],
                         timeout=30, message="the serve process to run the queued job")
    assert history[0]["project_id"] == "cli-plugins" and history[0]["worker"]
    assert "ok" in run(server, "jobs", "history", "audit_log.retention").output
    assert run(server, "plugins", "disable", "audit_log", "--project", "cli-plugins").exit_code == 0
    assert "audit_log.entries" not in run(server, "functions", "list", "--project", "cli-plugins").output
    missing = run(server, "jobs", "run", "nope.job")
    assert missing.exit_code != 0 and "nope.job" in missing.output
