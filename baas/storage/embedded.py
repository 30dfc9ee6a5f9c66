"""The embedded document store: an nx-27017 child process speaking the MongoDB wire protocol.

It lets `baas serve` run with no configuration while using exactly the pymongo code path of production.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pymongo
from pymongo.errors import PyMongoError

log = logging.getLogger("baas.embedded")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


_libc = None


def _prctl():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL("libc.so.6", use_errno=True)
    return _libc.prctl


def die_with_parent(sig: int = signal.SIGTERM, parent_pid: int | None = None) -> None:
    """Linux only: have the kernel send `sig` to this process when its parent goes, even by kill -9.

    The kernel watches the parent *thread* that forked this process. When `parent_pid` is given and the
    parent is already gone (it died between fork and this call), the signal is sent at once.
    """
    try:
        prctl = _prctl()
    except OSError:
        return
    PR_SET_PDEATHSIG = 1
    prctl(PR_SET_PDEATHSIG, sig)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


# nx-27017 logs two INFO lines for every command it runs, the watchdog's pings included: 20 MB a day from an idle
# server, with nothing rotating its log. So it is started with its logger at WARNING (its errors, and asyncio's,
# still reach the log).
_QUIET_NX_27017 = ("import logging, sys; logging.getLogger('nx_27017').setLevel(logging.WARNING); "
                   "from nx_27017.nx_27017 import main; sys.exit(main())")


def _server_command() -> list[str]:
    return [sys.executable, "-c", _QUIET_NX_27017]


def _is_database_on(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is a running (not zombie) nx-27017 on `data_dir`. Without /proc, any live process counts."""
    proc = Path("/proc", str(pid))
    if not Path("/proc/self").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        arguments = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    if state == "Z":
        return False
    return b"--data-dir" in arguments and os.fsencode(str(data_dir)) in arguments


def _last_line(log_file: Path, offset: int) -> str:
    """The last non-empty line the database wrote to its log since `offset` (where this start began)."""
    try:
        with open(log_file, "rb") as handle:
            handle.seek(offset)
            written = handle.read()[-8192:].decode(errors="replace")
    except OSError:
        return "it wrote nothing"
    lines = [line.strip() for line in written.splitlines() if line.strip()]
    return lines[-1][:500] if lines else "it wrote nothing"


class EmbeddedMongo:
    """Start with `start()`, stop with `stop()`; `uri` is valid in between.

    `watch()` adds a watchdog that restarts the server on the same data folder and port when it dies or
    stops answering pings (see Watchdog).
    """

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, startup_timeout: float = 20.0):
        self.data_dir = Path(data_dir)
        self.port = port
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.watchdog: Watchdog | None = None
        self._lock = threading.Lock()  # start/stop/restart from the watchdog thread and the owner

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> "EmbeddedMongo":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        log_file = self.data_dir / "nx-27017.log"
        self._clear_stale_pid_file()
        # It logs through a file handler and, the same lines, to stderr; only stderr also carries what it prints
        # before its logging starts (a refusal to start, a traceback). So stderr is its log and the handler's
        # copy goes nowhere.
        command = _server_command() + [
            "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "-p", str(self.port),
            "--log-file", os.devnull, "--pid-file", str(self.pid_file),
        ]
        linux = sys.platform.startswith("linux")
        parent = os.getpid()
        if linux:
            _prctl()  # load libc before forking: the child of a threaded process should do as little as it can
        with open(log_file, "ab") as output:
            start_of_this_run = output.tell()
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                preexec_fn=(lambda: die_with_parent(signal.SIGTERM, parent)) if linux else None,
                # Its own session: a Ctrl-C in the terminal reaches baas, which stops the database last, after
                # the workers have finished their requests.
                start_new_session=True,
            )
        self._wait_ready(log_file, start_of_this_run)
        return self

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "nx-27017.pid"

    def _clear_stale_pid_file(self) -> None:
        """nx-27017 refuses to start while its pid file names a process that exists. One that was killed (by the
        watchdog, the OOM killer, a second signal while it stopped) leaves its file behind, and the pid in it can
        be a zombie nobody has reaped yet, or soon any other process. So the file is removed unless it names a
        database still running on this data folder, which is given a moment to finish stopping."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                pid = int(self.pid_file.read_text().strip())
            except FileNotFoundError:
                return
            except (OSError, ValueError):
                pid = None
            if pid is None or not _is_database_on(pid, self.data_dir):
                self.pid_file.unlink(missing_ok=True)
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"another embedded database (pid {pid}) is still running on {self.data_dir}")
            time.sleep(0.05)

    def watch(self, interval: float, deadline: float,
              on_restart: Callable[[str], None] | None = None) -> "Watchdog":
        """Start the watchdog thread (stopped by `stop()`)."""
        self.watchdog = Watchdog(self, interval, deadline, on_restart)
        self.watchdog.start()
        return self.watchdog

    def restart(self, reason: str) -> None:
        """Kill the server (frozen or dead), reap it, and start a new one on the same data folder and port."""
        with self._lock:
            self._end_process()
            log.warning("restarting the embedded database on port %s: %s", self.port, reason)
            self.start()

    def _wait_ready(self, log_file: Path, start_of_this_run: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250)
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the embedded database exited at start (code {self.process.returncode}): "
                                       f"{_last_line(log_file, start_of_this_run)}; see {log_file}")
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    if time.monotonic() > deadline:
                        self._end_process()
                        raise RuntimeError(f"the embedded database did not answer within "
                                           f"{self.startup_timeout:.0f}s; see {log_file}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
            self.watchdog = None
        with self._lock:
            self._end_process(graceful=True)

    def _end_process(self, graceful: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            if graceful:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            if self.process.poll() is None:
                self.process.kill()  # SIGKILL also ends a SIGSTOPped process
        self.process.wait()          # reaped: no <defunct> child
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Watchdog(threading.Thread):
    """Pings the embedded database every `interval` seconds; restarts it when it has exited or a ping gets no
    answer within `deadline` seconds.

    nx-27017 runs every command in one thread and ignores maxTimeMS, so a single runaway command freezes it for
    every project; killing it is the only way out. Its data survives kill -9 (each write is committed to
    SQLite before it is acknowledged), so a restart loses nothing acknowledged. This thread must live as long
    as the server it restarts: the kernel ties a child's parent-death signal to the thread that forked it.
    """

    def __init__(self, server: EmbeddedMongo, interval: float, deadline: float,
                 on_restart: Callable[[str], None] | None = None):
        super().__init__(name="baas-embedded-db-watchdog", daemon=True)
        self.server = server
        self.interval = interval
        self.deadline = deadline
        self.on_restart = on_restart
        self.restarts = 0
        self._stopping = threading.Event()

    def _new_client(self) -> pymongo.MongoClient:
        timeout_ms = int(self.deadline * 1000)
        return pymongo.MongoClient(self.server.uri, serverSelectionTimeoutMS=timeout_ms,
                                   connectTimeoutMS=timeout_ms, socketTimeoutMS=timeout_ms,
                                   maxPoolSize=1, retryReads=False, appname="baas-watchdog")

    def run(self) -> None:
        client = self._new_client()
        try:
            while not self._stopping.wait(self.interval):
                try:
                    reason = self._check(client)
                    if reason is None or self._stopping.is_set():
                        continue
                    client.close()
                    self._restart(reason)
                    client = self._new_client()
                except Exception:  # the thread must outlive any surprise: the database dies with it
                    log.exception("the embedded database watchdog failed; it keeps watching")
        finally:
            client.close()

    def _check(self, client) -> str | None:
        process = self.server.process
        if process is None or process.poll() is not None:
            code = None if process is None else process.returncode
            return f"its process exited (code {code})"
        try:
            client.admin.command("ping")
        except PyMongoError:
            if self.server.process is not process or process.poll() is not None:
                return f"its process exited (code {process.returncode})"
            return f"it did not answer a ping within {self.deadline:g}s"
        return None

    def _restart(self, reason: str) -> None:
        backoff = self.interval
        while not self._stopping.is_set():
            try:
                self.server.restart(reason)
                break
            except RuntimeError as exc:
                log.error("the embedded database did not come back (%s); trying again in %.1fs", exc, backoff)
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, 30.0)
        else:
            return
        self.restarts += 1
        log.warning("the embedded database is back (restart %d)", self.restarts)
        if self.on_restart is not None:
            try:
                self.on_restart(reason)
            except Exception:  # bookkeeping must not stop the watch
                log.exception("could not record the embedded database restart")

    def stop(self) -> None:
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=self.deadline + 5)
