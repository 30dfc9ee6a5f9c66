"""Helpers for the foundation tests that run `baas` as a real child process (imported by their modules)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


from baas.storage.embedded import free_port
from baas.testing import wait_ready, wait_until

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra) -> dict:
    """The test runner's environment without any BAAS_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAAS_")}
    env.update(extra)
    return env


def run_baas(*args, env: dict | None = None, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    """Run `python -m baas ...` to completion (for commands expected to exit)."""
    return subprocess.run([sys.executable, "-m", "baas", *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else clean_env(), stdin=subprocess.DEVNULL, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


class EmbeddedServer:
    """`baas serve` on the embedded default: no config file, no BAAS_* variables, its own data folder."""

    def __init__(self, data_dir: Path, log_dir: Path, env_extra: dict | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"embedded-{self.port}.log"
        self.env = clean_env(**(env_extra or {}))
        self.process: subprocess.Popen | None = None

    def start(self) -> "EmbeddedServer":
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "baas", "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
            start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 30) -> "EmbeddedServer":
        wait_ready(self.process, self.url, self.output, timeout)
        # The banner is printed before the port opens; wait for its last line to be flushed too.
        wait_until(lambda: "Listening" in self.output() or "admin token" in self.output()
                   or "baas keys create" in self.output(), timeout=10, message="the start-up banner")
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode
