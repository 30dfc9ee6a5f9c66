"""`baas login` / `baas logout`: remember a server's URL and admin token as a named profile."""
from __future__ import annotations

import click

from baas_cli.client import (DEFAULT_PROFILE, AdminClient, CliError, load_profiles, normalize_url, profiles_path,
                             save_profiles)


@click.command("login")
@click.option("--url", required=True, envvar="BAAS_URL", show_envvar=True,
              help="The baas server, e.g. https://baas.example.com.")
@click.option("--token", prompt="Admin token", hide_input=True, envvar="BAAS_ADMIN_TOKEN", show_envvar=True,
              help="The admin token (asked for when not given, so it stays out of your shell history).")
@click.option("--profile", default=DEFAULT_PROFILE, show_default=True, metavar="NAME",
              help="Save under this name; use it later with --profile NAME or BAAS_PROFILE.")
@click.option("--no-verify", is_flag=True, help="Save without checking the token against the server.")
def login(url, token, profile, no_verify):
    """Save a server's URL and admin token for later commands (file readable by you only)."""
    url = normalize_url(url)
    token = token.strip()
    if not token:
        raise CliError("the admin token is empty")
    if not profile.strip():
        raise CliError("the profile name is empty")
    if not no_verify:
        AdminClient(url, token).list_projects()  # a wrong URL or token fails here, and nothing is saved
    profiles = load_profiles()
    profiles[profile] = {"url": url, "token": token}
    path = save_profiles(profiles)
    click.echo(f"Logged in to {url} as profile '{profile}' (saved in {path}).")


@click.command("logout")
@click.option("--profile", default=DEFAULT_PROFILE, show_default=True, envvar="BAAS_PROFILE", show_envvar=True,
              metavar="NAME", help="The profile to forget.")
def logout(profile):
    """Forget a saved profile and its admin token."""
    profiles = load_profiles()
    if profile not in profiles:
        click.echo(f"No profile '{profile}' in {profiles_path()}; nothing to do.")
        return
    del profiles[profile]
    save_profiles(profiles)
    click.echo(f"Logged out: removed profile '{profile}'.")


def register(cli: click.Group) -> None:
    cli.add_command(login)
    cli.add_command(logout)
