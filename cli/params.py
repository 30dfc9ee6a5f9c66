"""Option types shared by the CLI's commands."""
from __future__ import annotations

import json

import click


class JsonObject(click.ParamType):
    """An option value that must be a JSON object (`--data '{"plan": "pro"}'`)."""

    name = "JSON"

    def convert(self, value, param, ctx):
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"not valid JSON: {exc}", param, ctx)
        if not isinstance(parsed, dict):
            self.fail("must be a JSON object, e.g. '{\"plan\": \"pro\"}'", param, ctx)
        return parsed


yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def confirm_unless(yes: bool, question: str) -> None:
    """Ask `question` on stderr before a destructive action, unless --yes; no aborts the command."""
    if not yes:
        click.confirm(question, abort=True, err=True)
