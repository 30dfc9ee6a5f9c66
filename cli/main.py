"""`baas`: run the server and manage projects and keys through the admin API."""
from __future__ import annotations

import sys

import click

from baas import __version__
from baas_cli.client import connection_options, remember_global_options


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="baas")
@connection_options(with_envvars=False)
@click.pass_context
def cli(ctx, url, token, profile, as_json):
    """baas: documents, files, auth, push and plugins for your apps, self-hosted.

    --url, --token, --profile and --json work before the command (`baas --json projects list`) and after it
    (`baas projects list --json`); given in both places, the one after the command wins.
    """
    remember_global_options(ctx, url=url, token=token, profile=profile, as_json=as_json)


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="BAAS_CONFIG",
              help="YAML config file (also BAAS_CONFIG).")
@click.option("--data-dir", help="Data folder for the embedded default [./baas-data].")
@click.option("--host", help="Address to listen on [127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [8000].")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes [1].")
@click.option("--dev", is_flag=True, help="Use Flask's development server instead of granian.")
@click.option("--reset-admin-token", is_flag=True, help="Revoke all admin tokens and print a new one.")
def serve(config_path, data_dir, host, port, workers, dev, reset_admin_token):
    """Run the API server (on the embedded default when no database is configured)."""
    from baas import config as config_module
    from baas.config import ConfigError
    from baas.server import serve as run_server

    overrides = {key: value for key, value in (("data_dir", data_dir), ("server.host", host),
                                                ("server.port", port), ("server.workers", workers))
                 if value is not None}
    try:
        config = config_module.load(config_path, overrides=overrides)
        run_server(config, dev=dev, reset_admin_token=reset_admin_token, echo=click.echo)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


def _register_commands() -> None:
    import importlib

    for module_name in ("baas_cli.projects", "baas_cli.keys", "baas_cli.login", "baas_cli.worker", "baas_cli.plugins",
                        "baas_cli.push", "baas_cli.users", "baas_cli.collections", "baas_cli.doctor",
                        "baas_cli.completion", "baas_cli.transfer", "baas_cli.files"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(cli)


_register_commands()


def main() -> None:
    cli(prog_name="baas")


if __name__ == "__main__":
    sys.exit(main())
