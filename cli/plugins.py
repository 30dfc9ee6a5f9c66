"""`baas plugins ...`, `baas functions list`, `baas jobs ...`: the extension system through the admin API."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

import click

from baas_cli.client import admin_command
from baas_cli.params import JsonObject

PLUGIN_COLUMNS = [
    ("NAME", "name"),
    ("STATUS", "status"),
    ("SOURCE", "source"),
    ("GLOBAL", lambda p: "yes" if p.get("enabled_globally") else ""),
    ("FUNCTIONS", lambda p: ", ".join(p.get("functions") or [])),
    ("JOBS", lambda p: ", ".join(p.get("jobs") or [])),
    ("ERROR", lambda p: p.get("error") or ""),
]
ENABLED_COLUMNS = [
    ("PLUGIN", "plugin"),
    ("GLOBAL", lambda p: "yes" if p.get("enabled_globally") else ""),
    ("SETTINGS", lambda p: json.dumps(p.get("settings") or {}, sort_keys=True)),
]
FUNCTION_COLUMNS = [
    ("NAME", "name"),
    ("PLUGIN", "plugin"),
    ("ACCESS", lambda f: f["access"] + (f" ({', '.join(f['roles'])})" if f.get("roles") else "")),
    ("RATE LIMIT", lambda f: f.get("rate_limit") or ""),
    ("DESCRIPTION", "description"),
]
JOB_COLUMNS = [
    ("NAME", "name"),
    ("PLUGIN", "plugin"),
    ("SCHEDULE", "schedule"),
    ("SCOPE", lambda j: "per project" if j.get("per_project") else "platform"),
    ("NEXT", lambda j: _when(j.get("next_fire"))),
]
RUN_COLUMNS = [
    ("ID", "id"),
    ("PROJECT", lambda r: r.get("project_id") or "-"),
    ("TRIGGER", "trigger"),
    ("STATUS", "status"),
    ("STARTED", lambda r: _when(r.get("started"))),
    ("SECONDS", lambda r: "" if r.get("duration") is None else f"{r['duration']:.3f}"),
    ("WORKER", lambda r: r.get("worker") or ""),
    ("ERROR", lambda r: r.get("error") or ""),
]


def _when(epoch) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _segment(value: str) -> str:
    return quote(value, safe="")


# ---- plugins

@click.group("plugins")
def plugins():
    """Installed plugins, and which run in which project."""


@plugins.command("list")
@click.option("--project", "project_id", metavar="PROJECT", help="Show the plugins that run in this project.")
@admin_command
def plugins_list(project_id, api, out):
    """List installed plugins (failed ones with their error), or those enabled in --project."""
    if project_id:
        out.table(api.request("GET", f"/admin/v1/projects/{_segment(project_id)}/plugins"), ENABLED_COLUMNS,
                  empty=f"No plugin runs in {project_id}; enable one with `baas plugins enable NAME --project "
                        f"{project_id}`.")
        return
    out.table(api.request("GET", "/admin/v1/plugins"), PLUGIN_COLUMNS, empty="No plugins are installed.")


@plugins.command("enable")
@click.argument("name", metavar="PLUGIN")
@click.option("--project", "project_id", metavar="PROJECT", required=True)
@click.option("--settings", type=JsonObject(), default=None, help="The plugin's settings as a JSON object.")
@admin_command
def plugins_enable(name, project_id, settings, api, out):
    """Enable PLUGIN for a project (or change its settings); the server checks them against the plugin's schema."""
    body = {"settings": settings} if settings is not None else {}
    enabled = api.request("POST", f"/admin/v1/projects/{_segment(project_id)}/plugins/{_segment(name)}", body)
    if out.as_json:
        out.json(enabled)
        return
    click.echo(f"Plugin {name} is enabled for project {project_id}.")


@plugins.command("disable")
@click.argument("name", metavar="PLUGIN")
@click.option("--project", "project_id", metavar="PROJECT", required=True)
@admin_command
def plugins_disable(name, project_id, api, out):
    """Disable PLUGIN for a project (its settings there are forgotten)."""
    api.request("DELETE", f"/admin/v1/projects/{_segment(project_id)}/plugins/{_segment(name)}")
    if out.as_json:
        out.json({"plugin": name, "project_id": project_id, "enabled": False})
        return
    click.echo(f"Plugin {name} is disabled for project {project_id}.")


# ---- functions

@click.group("functions")
def functions():
    """Cloud functions that plugins register (POST /v1/functions/NAME)."""


@functions.command("list")
@click.option("--project", "project_id", metavar="PROJECT", help="Only the functions enabled in this project.")
@admin_command
def functions_list(project_id, api, out):
    """List cloud functions with who may call them."""
    query = f"?{urlencode({'project': project_id})}" if project_id else ""
    out.table(api.request("GET", f"/admin/v1/functions{query}"), FUNCTION_COLUMNS, empty="No functions.")


# ---- jobs

@click.group("jobs")
def jobs():
    """Scheduled plugin jobs: list, run now, history."""


@jobs.command("list")
@admin_command
def jobs_list(api, out):
    """List jobs with their schedule and next fire time (UTC)."""
    out.table(api.request("GET", "/admin/v1/jobs"), JOB_COLUMNS, empty="No jobs.")


@jobs.command("run")
@click.argument("name", metavar="NAME")
@click.option("--project", "project_id", metavar="PROJECT",
              help="Only this project [every project that enabled the job's plugin].")
@admin_command
def jobs_run(name, project_id, api, out):
    """Queue a run of NAME now; a worker (or `baas serve` on the embedded default) runs it."""
    queued = api.request("POST", f"/admin/v1/jobs/{_segment(name)}/runs",
                         {"project": project_id} if project_id else {})
    if out.as_json:
        out.json(queued)
        return
    out.table(queued, RUN_COLUMNS, empty=f"Job {name} runs in no project: enable its plugin first.")
    click.echo(f"Queued; see `baas jobs history {name}`.")


@jobs.command("history")
@click.argument("name", metavar="NAME")
@click.option("--project", "project_id", metavar="PROJECT", help="Only runs for this project.")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@admin_command
def jobs_history(name, project_id, limit, api, out):
    """Runs of NAME, newest first: start, duration, outcome, error and worker."""
    query = {"limit": limit, **({"project": project_id} if project_id else {})}
    out.table(api.request("GET", f"/admin/v1/jobs/{_segment(name)}/runs?{urlencode(query)}"), RUN_COLUMNS,
              empty=f"Job {name} has not run yet.")


def register(cli: click.Group) -> None:
    cli.add_command(plugins)
    cli.add_command(functions)
    cli.add_command(jobs)
