"""`baas users ...`: a project's end users through the admin API (/admin/v1/projects/<id>/users)."""
from __future__ import annotations

import sys

import click

from baas_cli.client import admin_command
from baas_cli.params import JsonObject, confirm_unless, yes_option
from baas_cli.output import format_time

USER_COLUMNS = [
    ("ID", "id"),
    ("EMAIL", "email"),
    ("VERIFIED", "email_verified"),
    ("ROLES", "roles"),
    ("DISABLED", "disabled"),
    ("CREATED", lambda u: format_time(u.get("created_at"))),
]

USER_FIELDS = [
    ("id", "id"),
    ("email", "email"),
    ("verified", "email_verified"),
    ("anonymous", "anonymous"),
    ("roles", "roles"),
    ("disabled", "disabled"),
    ("data", lambda u: u.get("data")),
    ("created", lambda u: format_time(u.get("created_at"))),
    ("updated", lambda u: format_time(u.get("updated_at"))),
]


def _read_password(from_stdin: bool, prompt: bool) -> str | None:
    # Never an option value: command lines show up in `ps` and shell history.
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin read an empty line.")
        return password
    if prompt:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return None


@click.group("users")
def users():
    """A project's users: list, create, change, disable, sign out and delete them."""


@users.command("list")
@click.argument("project_id", metavar="PROJECT")
@click.option("--email", help="Only the user with this email.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="Users per page.")
@click.option("--after", metavar="USER_ID", help="Start after this user id (the 'next' of the previous page).")
@admin_command
def list_(project_id, email, limit, after, api, out):
    """List PROJECT's users in id order, one page at a time."""
    page = api.list_users(project_id, limit, after, email)
    if out.as_json:
        out.json(page)
        return
    out.table(page["users"], USER_COLUMNS, empty=f"Project {project_id} has no users" + (" matching." if email
                                                                                          else " yet."))
    if page.get("next"):
        out.note(f"More users: baas users list {project_id} --after {page['next']}")


@users.command("show")
@click.argument("project_id", metavar="PROJECT")
@click.argument("user_id", metavar="USER_ID")
@admin_command
def show(project_id, user_id, api, out):
    """Show a user."""
    out.record(api.get_user(project_id, user_id), USER_FIELDS)


@users.command("create")
@click.argument("project_id", metavar="PROJECT")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--password-prompt", is_flag=True, help="Ask for the password (hidden).")
@click.option("--role", "roles", multiple=True, metavar="ROLE", help="Give the user this role (repeat for more).")
@click.option("--verified", is_flag=True, help="Mark the email as already verified.")
@click.option("--data", type=JsonObject(), help="Profile data as a JSON object.")
@admin_command
def create(project_id, email, password_stdin, password_prompt, roles, verified, data, api, out):
    """Create a user. Without a password the user sets one through a password reset."""
    if password_stdin and password_prompt:
        raise click.UsageError("Give --password-stdin or --password-prompt, not both.")
    body = {"email": email, "roles": list(roles), "email_verified": verified}
    password = _read_password(password_stdin, password_prompt)
    if password is not None:
        body["password"] = password
    if data is not None:
        body["data"] = data
    user = api.create_user(project_id, body)
    out.record(user, USER_FIELDS, title=f"Created user {user['id']} in project {project_id}.")


@users.command("update")
@click.argument("project_id", metavar="PROJECT")
@click.argument("user_id", metavar="USER_ID")
@click.option("--verified/--unverified", default=None, help="Mark the email verified or not.")
@click.option("--data", type=JsonObject(), help="Replace the profile data with this JSON object.")
@admin_command
def update(project_id, user_id, verified, data, api, out):
    """Change a user's verified flag or profile data (roles: set-roles; disabled: disable/enable)."""
    body = {key: value for key, value in (("email_verified", verified), ("data", data)) if value is not None}
    if not body:
        raise click.UsageError("Nothing to change: give --verified/--unverified or --data.")
    out.record(api.update_user(project_id, user_id, body), USER_FIELDS, title=f"Updated user {user_id}.")


@users.command("set-roles")
@click.argument("project_id", metavar="PROJECT")
@click.argument("user_id", metavar="USER_ID")
@click.argument("roles", nargs=-1, metavar="[ROLE]...")
@admin_command
def set_roles(project_id, user_id, roles, api, out):
    """Replace a user's roles (none given: remove all). Tokens with the old roles stop working."""
    user = api.update_user(project_id, user_id, {"roles": list(roles)})
    out.record(user, USER_FIELDS, title=f"Set the roles of user {user_id}.")


@users.command("disable")
@click.argument("project_id", metavar="PROJECT")
@click.argument("user_id", metavar="USER_ID")
@yes_option
@admin_command
def disable(project_id, user_id, yes, api, out):
    """Disable a user: it cannot log in and is signed out everywhere."""
    confirm_unless(yes, f"Disable user {user_id} of project '{project_id}' and sign it out everywhere?")
    out.record(api.update_user(project_id, user_id, {"disabled": True}), USER_FIELDS,
               title=f"Disabled user {user_id}.")


@users.command("enable")
@click.argument("project_id", metavar="PROJECT")
@click.argument("user_id", metavar="USER_ID")
@admin_command
def enable(project_id, user_id, api, out):
    """Let a disabled user log in again."""
    out.record(api.update_user(project_id, user_id, {"disabled": False}), USER_FIELDS,
               title=f"Enabled user {user_id}.")


@users.command("revoke-sessions")
@click.argument("project_id", metavar="PROJECT")
@click.argument("user_id", metavar="USER_ID")
@yes_option
@admin_command
def revoke_sessions(project_id, user_id, yes, api, out):
    """Sign a user out on every device (its refresh and access tokens stop working)."""
    confirm_unless(yes, f"Sign user {user_id} of project '{project_id}' out everywhere?")
    result = api.revoke_user_sessions(project_id, user_id)
    out.result(result, f"Signed user {user_id} out: {result['revoked']} open session(s) revoked.")


@users.command("delete")
@click.argument("project_id", metavar="PROJECT")
@click.argument("user_id", metavar="USER_ID")
@yes_option
@admin_command
def delete(project_id, user_id, yes, api, out):
    """Delete a user for good."""
    confirm_unless(yes, f"Delete user {user_id} of project '{project_id}'? This cannot be undone")
    api.delete_user(project_id, user_id)
    out.result({"deleted": user_id}, f"Deleted user {user_id}.")


def register(cli: click.Group) -> None:
    cli.add_command(users)
