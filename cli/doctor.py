"""`baas doctor`: check a server's configuration and the services it needs, saying how to fix each problem."""
from __future__ import annotations

import click

from baas_cli.output import Output

FINDING_COLUMNS = [("CHECK", "check"), ("STATUS", "status"), ("DETAIL", "detail")]


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="BAAS_CONFIG",
              help="YAML config file (also BAAS_CONFIG); BAAS_* variables apply as for `baas serve`.")
@click.option("--strict", is_flag=True, help="Exit non-zero on warnings too.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
def doctor(config_path, strict, as_json):
    """Check config, MongoDB (reachable, version, replica set, clock), storage, SMTP and secrets."""
    from baas import config as config_module
    from baas.config import ConfigError
    from baas.observability.doctor import FAIL, WARN, Finding, run_checks

    out = Output(as_json)
    try:
        config = config_module.load(config_path)
    except ConfigError as exc:
        findings = [Finding("config", FAIL, str(exc), "fix the named key in the config file or environment")]
    else:
        findings = run_checks(config)
    if as_json:
        out.json([finding.as_dict() for finding in findings])
    else:
        out.table([finding.as_dict() for finding in findings], FINDING_COLUMNS)
        for finding in findings:
            if finding.status != "ok" and finding.fix:
                click.echo(f"{finding.check}: {finding.fix}")
    failing = {FAIL, WARN} if strict else {FAIL}
    problems = [finding for finding in findings if finding.status in failing]
    if problems:
        if not as_json:
            click.echo(f"{len(problems)} problem(s) found.", err=True)
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    cli.add_command(doctor)
