"""The embedded document store: an nx-27017 child process speaking the MongoDB wire protocol.

It lets `baas serve` run with no configuration while using exactly the pymongo code path of production.
"""
from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymongo
from pymongo.errors import PyMongoError

log = logging.getLogger("baas.embedded")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    # Linux only: if the baas process is killed hard, the database child goes with it.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _server_command() -> list[str]:
    exe = shutil.which("nx-27017", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if exe:
        return [exe]
    return [sys.executable, "-m", "nx_27017"]


class EmbeddedMongo:
    """Start with `start()`, stop with `stop()`; `uri` is valid in between."""

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, startup_timeout: float = 20.0):
        self.data_dir = Path(data_dir)
        self.port = port
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> "EmbeddedMongo":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        log_file = self.data_dir / "nx-27017.log"
        command = _server_command() + [
            "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "-p", str(self.port),
            "--log-file", str(log_file), "--pid-file", str(self.data_dir / "nx-27017.pid"),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._wait_ready(log_file)
        return self

    def _wait_ready(self, log_file: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250)
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the embedded database exited at start (code {self.process.returncode}); "
                                       f"see {log_file}")
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"the embedded database did not answer within "
                                           f"{self.startup_timeout:.0f}s; see {log_file}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
