"""`baas projects ...`: create, list, show, update and delete projects through the admin API."""
from __future__ import annotations

import click

from baas_cli.client import admin_command
from baas_cli.output import format_time
from baas_cli.params import confirm_unless, yes_option

PROJECT_COLUMNS = [
    ("ID", "id"),
    ("NAME", "name"),
    ("CORS ORIGINS", lambda p: (p.get("settings") or {}).get("cors_origins")),
    ("CREATED", lambda p: format_time(p.get("created_at"))),
]

PROJECT_FIELDS = [
    ("id", "id"),
    ("name", "name"),
    ("cors origins", lambda p: (p.get("settings") or {}).get("cors_origins")),
    ("settings", lambda p: {k: v for k, v in (p.get("settings") or {}).items() if k != "cors_origins"}),
    ("created", lambda p: format_time(p.get("created_at"))),
    ("updated", lambda p: format_time(p.get("updated_at"))),
]


@click.group("projects")
def projects():
    """Projects: each has its own database, files, users and API keys."""


@projects.command("create")
@click.argument("project_id", metavar="ID")
@click.option("--name", help="A display name [the id].")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="A browser origin allowed to call the project's API, e.g. https://app.example.com (repeat "
                   "for more).")
@admin_command
def create(project_id, name, cors_origins, api, out):
    """Create a project. ID: 3-40 lowercase letters, digits and '-', starting with a letter."""
    settings = {"cors_origins": list(cors_origins)} if cors_origins else None
    project = api.create_project(project_id, name, settings)
    out.record(project, PROJECT_FIELDS, title=f"Created project {project['id']}.")
    out.note(f"Next: make its keys with `baas keys create {project['id']} --kind client` (and --kind server).")


@projects.command("list")
@admin_command
def list_(api, out):
    """List projects."""
    out.table(api.list_projects(), PROJECT_COLUMNS, empty="No projects yet; create one with `baas projects create`.")


@projects.command("show")
@click.argument("project_id", metavar="ID")
@admin_command
def show(project_id, api, out):
    """Show a project."""
    out.record(api.get_project(project_id), PROJECT_FIELDS)


@projects.command("update")
@click.argument("project_id", metavar="ID")
@click.option("--name", help="A new display name.")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="Replace the allowed browser origins with these (repeat for more; '*' allows any).")
@click.option("--clear-cors-origins", is_flag=True, help="Allow no browser origins.")
@admin_command
def update(project_id, name, cors_origins, clear_cors_origins, api, out):
    """Change a project's name or allowed browser origins."""
    if cors_origins and clear_cors_origins:
        raise click.UsageError("--cors-origin and --clear-cors-origins contradict each other.")
    settings = None
    if cors_origins or clear_cors_origins:
        settings = {"cors_origins": list(cors_origins)}
    if name is None and settings is None:
        raise click.UsageError("Nothing to change: give --name, --cors-origin or --clear-cors-origins.")
    project = api.update_project(project_id, name, settings)
    out.record(project, PROJECT_FIELDS, title=f"Updated project {project['id']}.")


@projects.command("delete")
@click.argument("project_id", metavar="ID")
@yes_option
@admin_command
def delete(project_id, yes, api, out):
    """Delete a project with its database, files and keys. This cannot be undone."""
    confirm_unless(yes, f"Delete project '{project_id}' on {api.url} with its database, files and keys? "
                        "This cannot be undone")
    api.delete_project(project_id)
    if out.as_json:
        out.json({"id": project_id, "deleted": True})
    else:
        out.note(f"Deleted project {project_id}.")


def register(cli: click.Group) -> None:
    cli.add_command(projects)
