"""`baas export PROJECT` and `baas import FILE`: move a project between servers as one tar.gz archive."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from baas_cli.client import admin_command
from baas_cli.params import confirm_unless


def _interactive() -> bool:
    # Progress is for people at a terminal; scripts and logs get only the result (and one-line errors).
    return sys.stderr.isatty()


class _NoBar:
    def update(self, _count: int) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


class _ProgressFile:
    """A file that moves a progress bar as requests reads it; `len` makes requests send a Content-Length."""

    def __init__(self, handle, bar):
        self.handle = handle
        self.bar = bar
        self.len = os.fstat(handle.fileno()).st_size

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.bar.update(len(data))
        return data


@click.command("export")
@click.argument("project_id", metavar="PROJECT")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Archive to write [PROJECT.baas.tar.gz].")
@admin_command
def export(project_id, output, api, out):
    """Export PROJECT (collections, documents, users, files, push subscriptions, keys, plugin settings) to a
    tar.gz archive."""
    target = Path(output or f"{project_id}.baas.tar.gz")
    response = api.export_project(project_id)
    # Written next to the target and renamed at the end, so an interrupted export leaves no half archive.
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent.resolve())
    written = 0
    try:
        with os.fdopen(handle, "wb") as file:
            # The size is known only at the end (the archive is made as it streams): show bytes so far.
            for chunk in response.iter_content(1024 * 256):
                file.write(chunk)
                written += len(chunk)
                if _interactive():
                    click.echo(f"\rExporting {project_id}: {written / 1e6:.1f} MB", nl=False, err=True)
            if _interactive():
                click.echo("", err=True)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    out.result({"project_id": project_id, "file": str(target), "bytes": written},
               f"Exported project {project_id} to {target} ({written} bytes).")


@click.command("import")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "project_id", metavar="ID", help="Import under this project id (new keys needed then).")
@click.option("--overwrite", is_flag=True, help="Replace the project if it exists (switched in one step once the "
                                                 "archive is fully imported).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before replacing a project (--overwrite).")
@admin_command
def import_(path, project_id, overwrite, yes, api, out):
    """Import a project archive made by `baas export`; a damaged archive is refused with nothing written."""
    if overwrite:
        confirm_unless(yes, "Replace the project's data, users, files and keys with the archive's?")
    with open(path, "rb") as handle:
        progress = click.progressbar(length=os.fstat(handle.fileno()).st_size, label=f"Uploading {path}",
                                     file=sys.stderr) if _interactive() else _NoBar()
        with progress as bar:
            result = api.import_project(_ProgressFile(handle, bar), project_id, overwrite)
    if out.as_json:
        out.json(result)
        return
    documents = sum(result["collections"].values())
    verb = "Replaced" if result.get("overwritten") else "Imported"
    click.echo(f"{verb} project {result['project_id']}: {documents} documents in {len(result['collections'])} "
               f"stored collections, {result.get('files', 0)} files ({result.get('file_bytes', 0)} bytes), "
               f"{result['keys']} keys.")
    if result["keys"] == 0 and project_id:
        click.echo(f"Make its keys with `baas keys create {result['project_id']} --kind client`.")


def register(cli: click.Group) -> None:
    cli.add_command(export)
    cli.add_command(import_)
