"""`baas push ...`: VAPID keys and push messages of a project through the admin API."""
from __future__ import annotations

import json
import re

import click

from baas_cli.client import AdminClient, admin_command
from baas_cli.output import format_time
from baas_cli.params import confirm_unless, yes_option

VAPID_COLUMNS = [
    ("ID", "id"),
    ("PUBLIC KEY", "public_key"),
    ("CURRENT", lambda k: "yes" if k.get("current") else ""),
    ("CREATED", lambda k: format_time(k.get("created_at"))),
]

MESSAGE_COLUMNS = [
    ("ID", "id"),
    ("STATUS", "status"),
    ("AUDIENCE", lambda m: ", ".join(f"{k}={json.dumps(v)}" for k, v in (m.get("audience") or {}).items())),
    ("TITLE", lambda m: (m.get("notification") or {}).get("title") or ""),
    ("SEND AT", lambda m: format_time(m.get("send_at"))),
    ("CREATED", lambda m: format_time(m.get("created_at"))),
]

MESSAGE_FIELDS = [
    ("id", "id"),
    ("status", "status"),
    ("audience", lambda m: json.dumps(m.get("audience"))),
    ("notification", lambda m: json.dumps(m.get("notification"))),
    ("send at", lambda m: format_time(m.get("send_at"))),
    ("created", lambda m: format_time(m.get("created_at"))),
    ("finished", lambda m: format_time(m.get("finished_at"))),
    ("total", lambda m: (m.get("counts") or {}).get("total")),
    ("sent", lambda m: (m.get("counts") or {}).get("sent")),
    ("failed", lambda m: (m.get("counts") or {}).get("failed")),
    ("removed", lambda m: (m.get("counts") or {}).get("removed")),
    ("pending", lambda m: (m.get("counts") or {}).get("pending")),
    ("cancelled", lambda m: (m.get("counts") or {}).get("cancelled")),
    ("failures", lambda m: "; ".join(f"{f['count']}x {f['reason']}" for f in m.get("failures") or []) or "none"),
]


def _message_path(project_id: str, message_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", message_id or ""):
        raise click.BadParameter(f"'{message_id}' is not a message id (pm_...)", param_hint="MESSAGE_ID")
    return _push_path(project_id, f"/messages/{message_id}")


def _push_path(project_id: str, rest: str) -> str:
    return AdminClient._project_path(project_id, f"/push{rest}")


def _vapid_rows(keys: dict) -> list:
    return [{k: v for k, v in keys.items() if k != "previous"}] + list(keys.get("previous") or [])


@click.group("push")
def push():
    """Push: VAPID keys, FCM/APNs credentials and messages of a project."""


@push.group("vapid")
def vapid():
    """A project's VAPID key pairs (the public halves; private keys never leave the server)."""


@vapid.command("show")
@click.argument("project_id", metavar="PROJECT")
@admin_command
def vapid_show(project_id, api, out):
    """Show PROJECT's VAPID public keys: the current one first."""
    keys = api.request("GET", _push_path(project_id, "/vapid"))
    if out.as_json:
        return out.json(keys)
    out.table(_vapid_rows(keys), VAPID_COLUMNS)


@vapid.command("rotate")
@click.argument("project_id", metavar="PROJECT")
@yes_option
@admin_command
def vapid_rotate(project_id, yes, api, out):
    """Make a new VAPID pair for new subscriptions; existing ones keep theirs until browsers resubscribe."""
    confirm_unless(yes, f"Rotate the VAPID keys of project '{project_id}'?")
    keys = api.request("POST", _push_path(project_id, "/vapid/rotate"))
    if out.as_json:
        return out.json(keys)
    out.table(_vapid_rows(keys), VAPID_COLUMNS)
    click.echo("New subscriptions use the current key; older ones are still signed with the key they were made with.")


@push.command("send")
@click.argument("project_id", metavar="PROJECT")
@click.option("--user", "users", multiple=True, metavar="USER_ID", help="Send to this user (repeat for more).")
@click.option("--topic", "topics", multiple=True, metavar="TOPIC", help="Send to subscribers of this topic.")
@click.option("--filter", "user_filter", metavar="JSON", help="Send to the users this filter matches.")
@click.option("--all", "everyone", is_flag=True, help="Send to every subscription of the project.")
@click.option("--title", help="Notification title.")
@click.option("--body", help="Notification text.")
@click.option("--open", "open_url", metavar="URL", help="What a click on the notification opens.")
@click.option("--data", metavar="JSON", help="Extra data for the service worker (a JSON object).")
@click.option("--ttl", type=click.IntRange(0, 28 * 86400), help="Seconds the push service keeps it [86400].")
@click.option("--urgency", type=click.Choice(["very-low", "low", "normal", "high"]))
@click.option("--collapse", metavar="KEY", help="Collapse key: replaces an undelivered message with the same key.")
@click.option("--at", "send_at", metavar="ISO-8601", help="Send later, e.g. 2030-01-31T09:00:00Z.")
@admin_command
def send(project_id, users, topics, user_filter, everyone, title, body, open_url, data, ttl, urgency, collapse,
         send_at, api, out):
    """Queue a notification for PROJECT's users: exactly one of --user, --topic, --filter, --all (--open sets the URL a click opens)."""
    chosen = [a for a in (users and {"users": list(users)}, topics and {"topics": list(topics)},
                          user_filter and {"filter": _json_option(user_filter, "--filter")},
                          everyone and {"all": True}) if a]
    if len(chosen) != 1:
        raise click.UsageError("Give exactly one audience: --user, --topic, --filter or --all.")
    notification = {k: v for k, v in (("title", title), ("body", body), ("url", open_url)) if v is not None}
    if data is not None:
        notification["data"] = _json_option(data, "--data")
    message = {"audience": chosen[0], "notification": notification}
    for key, value in (("ttl", ttl), ("urgency", urgency), ("topic", collapse), ("send_at", send_at)):
        if value is not None:
            message[key] = value
    queued = api.request("POST", _push_path(project_id, "/messages"), message)
    if out.as_json:
        return out.json(queued)
    click.echo(f"Queued message {queued['id']}; follow it with `baas push status {project_id} {queued['id']}`.")


def _json_option(text: str, name: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=name) from None


@push.command("status")
@click.argument("project_id", metavar="PROJECT")
@click.argument("message_id", metavar="MESSAGE_ID")
@admin_command
def status(project_id, message_id, api, out):
    """Show a message's status, counts and grouped failure reasons."""
    message = api.request("GET", _message_path(project_id, message_id))
    out.record(message, MESSAGE_FIELDS, title=f"Message {message['id']}: {message['status']}.")


@push.command("list")
@click.argument("project_id", metavar="PROJECT")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@admin_command
def list_(project_id, limit, api, out):
    """List PROJECT's messages, newest first."""
    page = api.request("GET", _push_path(project_id, f"/messages?limit={limit}"))
    if out.as_json:
        return out.json(page)
    out.table(page["messages"], MESSAGE_COLUMNS, empty=f"Project {project_id} has sent no push messages.")


# --- native push credentials ----------------------------------------------------------------------------------

CREDENTIAL_COLUMNS = [
    ("PROVIDER", "provider"),
    ("ACCOUNT", lambda c: c.get("client_email") or f"team {c.get('team_id')} key {c.get('key_id')}"),
    ("APP", lambda c: c.get("firebase_project") or f"{c.get('bundle_id')} ({c.get('environment')})"),
    ("BASE URL", "base_url"),
    ("UPDATED", lambda c: format_time(c.get("updated_at"))),
]
PROJECT_META = "baas.push.credentials.project"


@push.group("credentials")
def credentials():
    """FCM and APNs credentials of a project (stored sealed; private keys are never shown)."""


@credentials.group("set")
@click.argument("project_id", metavar="PROJECT")
@click.pass_context
def credentials_set(ctx, project_id):
    """Set PROJECT's credentials for a native provider: `fcm FILE.json` or `apns --key-file ...`."""
    ctx.meta[PROJECT_META] = project_id


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(65536)
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {what} {path}: {exc}") from None


def _show_saved(saved: dict, out) -> None:
    if out.as_json:
        return out.json(saved)
    out.table([saved], CREDENTIAL_COLUMNS)


@credentials_set.command("fcm")
@click.argument("service_account_file", metavar="FILE.json")
@click.option("--base-url", help="FCM API origin [https://fcm.googleapis.com].")
@click.option("--token-url", help="OAuth token endpoint [the file's token_uri].")
@admin_command
def credentials_set_fcm(service_account_file, base_url, token_url, api, out):
    """Send to FCM with this Firebase service-account JSON (Project settings > Service accounts)."""
    project_id = click.get_current_context().meta[PROJECT_META]
    account = _json_option(_read_text(service_account_file, "service-account file"), "FILE.json")
    body = {"service_account": account}
    body.update({k: v for k, v in (("base_url", base_url), ("token_url", token_url)) if v})
    _show_saved(api.request("PUT", _push_path(project_id, "/credentials/fcm"), body), out)


@credentials_set.command("apns")
@click.option("--key-file", required=True, metavar="AuthKey_XXXXXXXXXX.p8", help="The token-signing key from Apple.")
@click.option("--key-id", required=True, help="The key's 10-character id.")
@click.option("--team-id", required=True, help="Your 10-character Apple team id.")
@click.option("--bundle-id", required=True, help="The app's bundle id (com.example.app).")
@click.option("--sandbox", is_flag=True, help="Development builds: Apple's sandbox host.")
@click.option("--base-url", help="APNs origin [Apple's host of the environment].")
@admin_command
def credentials_set_apns(key_file, key_id, team_id, bundle_id, sandbox, base_url, api, out):
    """Send to APNs with a .p8 token-signing key."""
    project_id = click.get_current_context().meta[PROJECT_META]
    body = {"key": _read_text(key_file, "key file"), "key_id": key_id, "team_id": team_id, "bundle_id": bundle_id,
            "environment": "sandbox" if sandbox else "production"}
    if base_url:
        body["base_url"] = base_url
    _show_saved(api.request("PUT", _push_path(project_id, "/credentials/apns"), body), out)


@credentials.command("show")
@click.argument("project_id", metavar="PROJECT")
@admin_command
def credentials_show(project_id, api, out):
    """Show which native providers PROJECT has credentials for (without secrets)."""
    found = api.request("GET", _push_path(project_id, "/credentials"))
    out.table(found, CREDENTIAL_COLUMNS, empty=f"Project {project_id} has no FCM or APNs credentials.")


@credentials.command("delete")
@click.argument("project_id", metavar="PROJECT")
@click.argument("provider", type=click.Choice(["fcm", "apns"]))
@yes_option
@admin_command
def credentials_delete(project_id, provider, yes, api, out):
    """Remove PROJECT's PROVIDER credentials: its devices get nothing until new ones are set."""
    confirm_unless(yes, f"Delete the {provider} credentials of project '{project_id}'?")
    api.request("DELETE", _push_path(project_id, f"/credentials/{provider}"))
    if out.as_json:
        return out.json({"deleted": provider})
    click.echo(f"Deleted the {provider} credentials of {project_id}.")


def register(cli: click.Group) -> None:
    cli.add_command(push)
