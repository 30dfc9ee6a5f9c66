"""What the management commands print: aligned text tables for people, JSON (--json) for scripts.

In JSON mode stdout holds exactly one JSON document, so `baas ... --json | jq` always works; notes for
people go to stderr.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import click

Column = tuple[str, "str | Callable[[dict], Any]"]


def format_time(value) -> str:
    """ISO timestamps from the server, shortened to minutes in UTC."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") + "Z"


def format_value(value) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={json.dumps(item) if isinstance(item, (dict, list)) else item}"
                         for key, item in value.items())
    return " ".join(str(value).split())  # a value never breaks a table row


def _cell(row: dict, getter) -> str:
    return format_value(getter(row) if callable(getter) else row.get(getter))


def render_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    headers = [header for header, _ in columns]
    body = [[_cell(row, getter) for _, getter in columns] for row in rows]
    widths = [max(len(cells[i]) for cells in [headers, *body]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
             for cells in [headers, *body]]
    return "\n".join(lines)


def render_record(row: dict, fields: Sequence[Column]) -> str:
    labels = [label for label, _ in fields]
    width = max(len(label) for label in labels) + 1
    return "\n".join(f"{(label + ':').ljust(width)}  {_cell(row, getter)}" for label, getter in fields)


class Output:
    def __init__(self, as_json: bool = False):
        self.as_json = as_json

    def json(self, data) -> None:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))

    def table(self, rows: Sequence[dict], columns: Sequence[Column], empty: str = "Nothing to show.") -> None:
        if self.as_json:
            self.json(list(rows))
        elif not rows:
            click.echo(empty)
        else:
            click.echo(render_table(rows, columns))

    def record(self, row: dict, fields: Sequence[Column], title: str | None = None) -> None:
        if self.as_json:
            self.json(row)
            return
        if title:
            click.echo(title)
        click.echo(render_record(row, fields))

    def result(self, data, text: str) -> None:
        """The outcome of an action: `data` as JSON for scripts, one sentence for people."""
        if self.as_json:
            self.json(data)
        else:
            click.echo(text)

    def note(self, text: str) -> None:
        """A line for people: stdout with tables, stderr in JSON mode."""
        click.echo(text, err=self.as_json)


def secret_block(secret: str) -> str:
    """The plaintext of a new key, set apart so it is hard to miss and easy to copy."""
    return (f"\n    {secret}\n\n"
            + click.style("This key is shown only once: copy it now. baas stores only a hash of it.", bold=True))
