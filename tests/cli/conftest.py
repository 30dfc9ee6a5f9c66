"""The CLI runs in-process (click's CliRunner) against a real `baas serve` child process."""
from __future__ import annotations

import os

import pytest
import requests
from click.testing import CliRunner

from baas.testing import ADMIN_TOKEN
from baas_cli.main import cli


@pytest.fixture(autouse=True)
def cli_home(tmp_path, monkeypatch):
    """A private config folder and no BAAS_* variables from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("BAAS_"):
            monkeypatch.delenv(name)
    home = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


@pytest.fixture
def server(server_process):
    return server_process()


class Cli:
    def __init__(self, env: dict):
        self.env = env

    def __call__(self, *args, input: str | None = None, env: dict | None = None):
        runner = CliRunner()
        return runner.invoke(cli, [str(a) for a in args], input=input, env={**self.env, **(env or {})},
                             catch_exceptions=False)


@pytest.fixture
def baas(server):
    """Run `baas ...` with the server's URL and admin token in the environment."""
    return Cli({"BAAS_URL": server.url, "BAAS_ADMIN_TOKEN": ADMIN_TOKEN})


@pytest.fixture
def bare_baas():
    """Run `baas ...` with nothing configured."""
    return Cli({})


class Http:
    """Plain HTTP to the server, to check what the CLI did from the outside."""

    def __init__(self, url: str):
        self.url = url

    def admin(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def with_key(self, key: str, method: str, path: str, **kwargs):
        headers = {"X-API-Key": key, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kwargs)


@pytest.fixture
def http(server):
    return Http(server.url)


def _assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output)
    text = result.output.strip()
    assert "\n" not in text, text
    assert text.startswith("Error: "), text
    assert "Traceback" not in text
    for fragment in fragments:
        assert fragment in text, text
    return text


@pytest.fixture
def one_line_error():
    """Check a failure: exit status 1, exactly one line starting with 'Error: ', no traceback."""
    return _assert_one_line_error
