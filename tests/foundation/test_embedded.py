"""`baas serve` with no configuration: embedded nx-27017, local files, secrets kept, keys printed once."""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import requests

from baas.storage.embedded import free_port
from baas.testing import wait_until
from foundation_support import assert_one_line_error, clean_env, run_baas

KEY_PATTERN = {
    "client": re.compile(r"client key\s+(baas_ck_\S+)"),
    "server": re.compile(r"server key\s+(baas_sk_\S+)"),
    "admin": re.compile(r"admin token\s+(baas_at_\S+)"),
}


def printed_secrets(output: str) -> dict:
    found = {name: pattern.search(output) for name, pattern in KEY_PATTERN.items()}
    assert all(found.values()), output
    return {name: match.group(1) for name, match in found.items()}


def nx_child_pid(data_dir) -> int:
    pid_file = data_dir / "db" / "nx-27017.pid"
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=10, message="the nx-27017 pid file")
    return int(pid_file.read_text().strip())


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_embedded_first_start_restart_and_stop(tmp_path, embedded_server):
    data_dir = tmp_path / "fresh" / "data"
    server = embedded_server(data_dir).wait_ready(timeout=30)
    output = server.output()

    secrets = printed_secrets(output)
    assert f"{server.url}/docs" in output
    secrets_file = data_dir / "secrets.json"
    assert secrets_file.exists()
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert secrets["admin"] not in secrets_file.read_text()   # tokens and keys are stored hashed, elsewhere

    # The printed admin token manages projects.
    admin = {"Authorization": f"Bearer {secrets['admin']}"}
    response = requests.get(f"{server.url}/admin/v1/projects", headers=admin, timeout=5)
    assert response.status_code == 200
    assert [p["id"] for p in response.json()] == ["default"]
    response = requests.get(f"{server.url}/admin/v1/projects", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert response.status_code == 401

    # The printed keys are accepted on the client API; a wrong key is not.
    for kind in ("client", "server"):
        response = requests.get(f"{server.url}/v1/project", headers={"X-API-Key": secrets[kind]}, timeout=5)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == "default"
        assert response.json()["key"]["kind"] == kind
    wrong = secrets["server"][:-4] + "xxxx"
    response = requests.get(f"{server.url}/v1/project", headers={"X-API-Key": wrong}, timeout=5)
    assert response.status_code == 401
    assert response.json()["message"] == "Unknown API key."

    # The database is a child process that goes away with the server.
    nx_pid = nx_child_pid(data_dir)
    assert process_alive(nx_pid)
    assert "nx" in open(f"/proc/{nx_pid}/cmdline").read()
    assert server.stop() == 0, server.output()
    wait_until(lambda: not process_alive(nx_pid), timeout=10, message="nx-27017 to stop")

    # A second start on the same folder reuses the data and prints no secrets.
    again = embedded_server(data_dir).wait_ready(timeout=30)
    response = requests.get(f"{again.url}/admin/v1/projects", headers=admin, timeout=5)
    assert response.status_code == 200
    assert [p["id"] for p in response.json()] == ["default"]
    response = requests.get(f"{again.url}/v1/project", headers={"X-API-Key": secrets["server"]}, timeout=5)
    assert response.status_code == 200
    restart_output = again.output()
    for value in secrets.values():
        assert value not in restart_output
    assert not re.search(r"baas_(ck|sk|at)_", restart_output), restart_output
    assert "baas keys create" in restart_output
    assert f"{again.url}/docs" in restart_output
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert again.stop() == 0


def test_second_server_on_the_same_folder_is_refused(tmp_path, embedded_server):
    data_dir = tmp_path / "data"
    first = embedded_server(data_dir).wait_ready(timeout=30)
    result = run_baas("serve", "--data-dir", str(data_dir), "--port", str(free_port()), timeout=60)
    assert_one_line_error(result, "another baas server is already using the data folder", str(data_dir))
    # The refused start harmed nothing: the first server still answers.
    assert requests.get(f"{first.url}/readyz", timeout=5).status_code == 200


def test_admin_token_from_environment_is_accepted_and_never_printed(tmp_path, embedded_server):
    token = "env-admin-token-" + os.urandom(12).hex()
    server = embedded_server(tmp_path / "data", BAAS_ADMIN_TOKEN=token).wait_ready(timeout=30)
    output = server.output()
    assert token not in output
    assert "baas_at_" not in output            # no generated admin token either
    assert "client key" in output and "server key" in output
    response = requests.get(f"{server.url}/admin/v1/projects", headers={"Authorization": f"Bearer {token}"},
                            timeout=5)
    assert response.status_code == 200
    assert [p["id"] for p in response.json()] == ["default"]
    assert server.stop() == 0
    assert token not in server.output()
    assert token not in (tmp_path / "data" / "secrets.json").read_text()


def test_serve_without_data_dir_uses_baas_data_in_the_working_directory(tmp_path):
    port = free_port()
    log_path = tmp_path / "cwd.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "baas", "serve", "--port", str(port)], cwd=tmp_path,
                                   env=clean_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def ready():
            assert process.poll() is None, log_path.read_text()
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout=30, message="baas serve in a bare folder")
        assert (tmp_path / "baas-data" / "secrets.json").exists()
        assert (tmp_path / "baas-data" / "db").is_dir()
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
