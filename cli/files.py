"""`baas files ...`: a project's stored files through the admin API (/admin/v1/projects/<id>/files)."""
from __future__ import annotations

import click

from baas_cli.client import admin_command
from baas_cli.output import format_time
from baas_cli.params import confirm_unless, yes_option

FILE_COLUMNS = [
    ("ID", "_id"),
    ("NAME", "name"),
    ("SIZE", lambda f: format_bytes(f.get("size"))),
    ("TYPE", "content_type"),
    ("PUBLIC", "public"),
    ("OWNER", "_owner"),
    ("CREATED", lambda f: format_time(f.get("_created"))),
]


def format_bytes(count) -> str:
    if not isinstance(count, int):
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return str(count)


def register(cli: click.Group) -> None:
    cli.add_command(files)


@click.group("files")
def files():
    """A project's stored files: list them, see the space they take, delete them."""


@files.command("list")
@click.argument("project_id", metavar="PROJECT")
@click.option("--filter", "filter_", metavar="JSON", help="""A filter like the API's, e.g. '{"size": {"$gt": 1000000}}'.""")
@click.option("--sort", default="-_created", show_default=True, help="Fields to sort by ('-' for descending).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Files per page.")
@click.option("--cursor", help="Continue after a page (the 'next' cursor the previous page printed).")
@admin_command
def list_(project_id, filter_, sort, limit, cursor, api, out):
    """List PROJECT's files, newest first, one page at a time."""
    page = api.list_files(project_id, filter_, sort, limit, cursor)
    if out.as_json:
        out.json(page)
        return
    out.table(page["items"], FILE_COLUMNS, empty=f"Project {project_id} has no files" +
              (" matching." if filter_ else " yet."))
    if page.get("next_cursor"):
        out.note(f"More files: baas files list {project_id} --cursor {page['next_cursor']}")


@files.command("usage")
@click.argument("project_id", metavar="PROJECT")
@admin_command
def usage(project_id, api, out):
    """Show how many files PROJECT stores and how many bytes they take."""
    found = api.file_usage(project_id)
    out.result(found, f"Project {project_id} stores {found['count']} files, {format_bytes(found['bytes'])} "
                      f"({found['bytes']} bytes).")


@files.command("delete")
@click.argument("project_id", metavar="PROJECT")
@click.argument("file_ids", metavar="FILE_ID...", nargs=-1, required=True)
@yes_option
@admin_command
def delete(project_id, file_ids, yes, api, out):
    """Delete files (metadata, bytes and thumbnails) for good."""
    what = f"file {file_ids[0]}" if len(file_ids) == 1 else f"{len(file_ids)} files"
    confirm_unless(yes, f"Delete {what} of project '{project_id}'? This cannot be undone")
    for file_id in file_ids:
        api.delete_file(project_id, file_id)
    out.result({"deleted": list(file_ids)}, f"Deleted {len(file_ids)} file(s) of project {project_id}.")
