"""`baas keys ...`: create, list, revoke and rotate a project's API keys through the admin API."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import click

from baas.principal import KEY_KINDS, SCOPES
from baas_cli.client import admin_command
from baas_cli.output import format_time, secret_block
from baas_cli.params import confirm_unless, yes_option

KEY_COLUMNS = [
    ("ID", "id"),
    ("KIND", "kind"),
    ("NAME", "name"),
    ("PREFIX", "prefix"),
    ("SCOPES", lambda k: k.get("scopes") or "all"),
    ("STATUS", "status"),
    ("CREATED", lambda k: format_time(k.get("created_at"))),
    ("EXPIRES", lambda k: format_time(k.get("expires_at"))),
]

KEY_FIELDS = [
    ("id", "id"),
    ("project", "project_id"),
    ("kind", "kind"),
    ("name", "name"),
    ("prefix", "prefix"),
    ("scopes", lambda k: k.get("scopes") or "all"),
    ("status", "status"),
    ("created", lambda k: format_time(k.get("created_at"))),
    ("expires", lambda k: format_time(k.get("expires_at"))),
    ("revoked", lambda k: format_time(k.get("revoked_at"))),
    ("rotated from", "rotated_from"),
    ("rotated to", "rotated_to"),
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)\s*([smhdw])")


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '1h30m', '30d', '2w'; a bare number is seconds."""
    value = (text or "").strip().lower()
    if value.isdigit():
        return timedelta(seconds=int(value))
    if not value or _DURATION.sub("", value).strip():
        raise ValueError(f"'{text}' is not a duration; use e.g. 90s, 15m, 1h30m, 30d or 2w")
    return timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(value)))


class Duration(click.ParamType):
    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class AwareTimestamp(click.ParamType):
    name = "ISO-8601"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"'{value}' is not an ISO 8601 time, e.g. 2030-01-31T00:00:00Z", param, ctx)
        if moment.tzinfo is None:
            self.fail(f"'{value}' has no time zone; add one, e.g. {value}Z for UTC", param, ctx)
        return moment


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _show_new_key(out, created: dict, title: str) -> None:
    if out.as_json:
        out.json(created)
        out.note("The value under \"key\" is shown only once: store it now.")
        return
    out.record(created, KEY_FIELDS, title=title)
    click.echo(secret_block(created["key"]))


@click.group("keys")
def keys():
    """API keys: client keys ship inside apps, server keys stay on your servers."""


@keys.command("create")
@click.argument("project_id", metavar="PROJECT")
@click.option("--kind", type=click.Choice(KEY_KINDS), required=True,
              help="client: public, always under access rules. server: secret, full access to the project.")
@click.option("--name", help="What the key is for, e.g. 'ios app' [the kind].")
@click.option("--scope", "scopes", multiple=True, metavar="SCOPE",
              help=f"Limit the key to this scope (repeat for more; none means all): {', '.join(SCOPES)}.")
@click.option("--expires-at", type=AwareTimestamp(), help="When the key stops working, e.g. 2030-01-31T00:00:00Z.")
@click.option("--expires-in", type=Duration(), help="Or how long it works from now, e.g. 12h, 30d, 2w.")
@admin_command
def create(project_id, kind, name, scopes, expires_at, expires_in, api, out):
    """Create an API key for PROJECT and print it (the only time it is shown)."""
    if expires_at is not None and expires_in is not None:
        raise click.UsageError("Give --expires-at or --expires-in, not both.")
    if expires_in is not None:
        if expires_in <= timedelta(0):
            raise click.BadParameter("must be longer than zero", param_hint="--expires-in")
        expires_at = datetime.now(timezone.utc) + expires_in
    created = api.create_key(project_id, kind, name, list(scopes),
                             _iso_utc(expires_at) if expires_at is not None else None)
    _show_new_key(out, created, f"Created {created['kind']} key {created['id']} for project {project_id}.")


@keys.command("list")
@click.argument("project_id", metavar="PROJECT")
@admin_command
def list_(project_id, api, out):
    """List PROJECT's keys (metadata and prefix; keys themselves cannot be shown again)."""
    out.table(api.list_keys(project_id), KEY_COLUMNS,
              empty=f"Project {project_id} has no keys; create one with `baas keys create {project_id}`.")


@keys.command("revoke")
@click.argument("project_id", metavar="PROJECT")
@click.argument("key_id", metavar="KEY_ID")
@yes_option
@admin_command
def revoke(project_id, key_id, yes, api, out):
    """Revoke a key: every server process refuses it within seconds."""
    confirm_unless(yes, f"Revoke key {key_id} of project '{project_id}'? Apps using it stop working within "
                        "seconds")
    revoked = api.revoke_key(project_id, key_id)
    out.record(revoked, KEY_FIELDS, title=f"Revoked key {revoked['id']}.")


@keys.command("rotate")
@click.argument("project_id", metavar="PROJECT")
@click.argument("key_id", metavar="KEY_ID")
@click.option("--grace", type=Duration(), default="0", show_default=True,
              help="How long the old key keeps working, e.g. 15m, 1h, 7d (at most 30d).")
@yes_option
@admin_command
def rotate(project_id, key_id, grace, yes, api, out):
    """Replace a key with a new one of the same kind, name and scopes, and print the new key."""
    seconds = int(grace.total_seconds())
    when = "immediately" if seconds == 0 else f"in {_describe(grace)}"
    confirm_unless(yes, f"Rotate key {key_id} of project '{project_id}'? The old key stops working {when}")
    rotated = api.rotate_key(project_id, key_id, seconds)
    previous = rotated.get("previous") or {}
    if out.as_json:
        _show_new_key(out, rotated, "")
        return
    _show_new_key(out, rotated, f"Rotated key {key_id}: the new key is {rotated['id']}.")
    if previous.get("revoked_at"):
        click.echo(f"The old key {key_id} no longer works.")
    else:
        click.echo(f"The old key {key_id} keeps working until {format_time(previous.get('expires_at'))}.")


def _describe(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def register(cli: click.Group) -> None:
    cli.add_command(keys)
