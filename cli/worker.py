"""`baas worker`: run background work (push delivery, plugin jobs, file sweeps) beside the API processes."""
from __future__ import annotations

import signal

import click


def register(cli: click.Group) -> None:
    cli.add_command(worker)


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="BAAS_CONFIG",
              help="YAML config file (also BAAS_CONFIG).")
def worker(config_path):
    """Run background work against the configured MongoDB (start as many as you like)."""
    from baas import config as config_module
    from baas import create_app
    from baas.config import ConfigError
    from baas.worker.runner import BackgroundWork, collect_runners

    try:
        config = config_module.load(config_path)
        if not config["mongodb"]["uri"]:
            raise ConfigError("baas worker needs mongodb.uri (BAAS_MONGODB_URI): on the embedded default, "
                              "`baas serve` does the background work itself")
        app = create_app(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    work = BackgroundWork(collect_runners(app.extensions["baas"]))
    signal.signal(signal.SIGTERM, work.request_stop)
    signal.signal(signal.SIGINT, work.request_stop)
    click.echo(f"baas worker running {', '.join(r.name for r in work.runners) or 'nothing (no background work)'}")
    work.start()
    work.wait()
    work.stop()
    app.extensions["baas"].close()
