"""`baas doctor` and `baas completion`: checks against the real test servers, and scripts the shells accept."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller

from baas.storage.embedded import free_port

STRONG = "Zq8-tV3pLr7xWm2Nc5Hb9Ky4Jd6Fs1Ga0"


class _Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


@pytest.fixture
def smtp_port():
    port = free_port()
    controller = Controller(_Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def _doctor(bare_baas, tmp_path, config: dict, *extra):
    path = tmp_path / "baas.yaml"
    path.write_text(yaml.safe_dump(config))
    result = bare_baas("doctor", "--config", path, "--json", *extra)
    return result, {finding["check"]: finding for finding in json.loads(result.stdout)}


def test_doctor_passes_a_healthy_setup(bare_baas, tmp_path, mongo_uri, s3_settings, smtp_port):
    result, findings = _doctor(bare_baas, tmp_path, {
        "data_dir": str(tmp_path / "data"), "admin_token": STRONG, "jwt": {"secret": STRONG[::-1]},
        "mongodb": {"uri": mongo_uri}, "storage": {"s3": dict(s3_settings)},
        "mail": {"smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"}}})
    assert result.exit_code == 0, result.output
    for check in ("config", "admin token", "jwt secret", "mongodb", "smtp"):
        assert findings[check]["status"] == "ok", findings[check]
    assert findings["storage"]["status"] in ("ok", "warn")  # the bucket may not exist yet
    assert findings["replica set"]["status"] in ("ok", "warn") and findings["clock"]["status"] in ("ok", "warn")
    table = bare_baas("doctor", "--config", tmp_path / "baas.yaml")
    assert table.exit_code == 0 and "CHECK" in table.output and "mongodb" in table.output


def test_doctor_names_each_problem_and_its_fix(bare_baas, tmp_path):
    closed = free_port()
    result, findings = _doctor(bare_baas, tmp_path, {
        "data_dir": str(tmp_path / "data"), "admin_token": "short-but-16-chars",
        "mongodb": {"uri": f"mongodb://127.0.0.1:{closed}/?directConnection=true", "timeout_ms": 300},
        "storage": {"s3": {"endpoint": f"127.0.0.1:{closed}", "access_key": "a", "secret_key": "b",
                           "secure": False, "timeout_seconds": 1}},
        "mail": {"smtp": {"host": "127.0.0.1", "port": closed, "security": "none", "timeout_seconds": 1}}})
    assert result.exit_code == 1
    assert findings["admin token"]["status"] == "fail" and "fewer than 32" in findings["admin token"]["detail"]
    assert findings["jwt secret"]["status"] == "fail" and "every host" in findings["jwt secret"]["fix"]
    assert findings["mongodb"]["status"] == "fail" and "unreachable" in findings["mongodb"]["detail"]
    assert findings["storage"]["status"] == "fail" and "unreachable" in findings["storage"]["detail"]
    assert findings["smtp"]["status"] == "fail" and "mail.smtp.host" in findings["smtp"]["fix"]
    for finding in findings.values():
        assert finding["status"] == "ok" or finding["fix"], finding
    assert "short-but-16-chars" not in result.output  # a secret is described, never printed


def test_doctor_reports_a_broken_config_file(bare_baas, tmp_path):
    (tmp_path / "baas.yaml").write_text("server: {port: many}\n")
    result = bare_baas("doctor", "--config", tmp_path / "baas.yaml")
    assert result.exit_code == 1 and "server.port" in result.output


def test_strict_fails_on_warnings(bare_baas, tmp_path):
    # The embedded default without SMTP only warns; --strict turns warnings into a failure.
    config = {"data_dir": str(tmp_path / "data")}
    assert _doctor(bare_baas, tmp_path, config)[0].exit_code == 0
    assert _doctor(bare_baas, tmp_path, config, "--strict")[0].exit_code == 1


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(bare_baas, shell):
    result = bare_baas("completion", shell)
    assert result.exit_code == 0 and "_BAAS_COMPLETE" in result.output


def test_bash_completion_parses_and_completes_commands(bare_baas, tmp_path):
    script = tmp_path / "completion.bash"
    script.write_text(bare_baas("completion", "bash").output)
    assert subprocess.run([shutil.which("bash"), "-n", str(script)], capture_output=True).returncode == 0
    # What the script asks the program when the user presses TAB after `baas us`:
    program = Path(sys.executable).with_name("baas")  # the installed console script, as the shell runs it
    answer = subprocess.run([str(program)], capture_output=True, text=True, timeout=60, env={
        **os.environ, "_BAAS_COMPLETE": "bash_complete", "COMP_WORDS": "baas us", "COMP_CWORD": "1"})
    assert "plain,users" in answer.stdout.splitlines(), answer.stdout + answer.stderr
