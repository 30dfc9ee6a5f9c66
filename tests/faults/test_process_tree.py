"""The `baas serve` process tree survives its own faults and always stops cleanly.

Real `baas serve` processes on the embedded database: main process, granian workers, nx-27017.
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

import baas
from baas.config import ConfigError
from baas.runtime import database_restarts
from baas.server import check_port_free
from baas.storage.embedded import free_port
from baas.storage.mongo import MongoStore
from baas.testing import ADMIN_TOKEN, ServerProcess, wait_until

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def is_database(pid: int) -> bool:
    try:
        return "nx-27017" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Running (a zombie counts as gone: it holds no socket and no lock)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Tree:
    """The processes of one `baas serve`: its workers and its embedded database."""

    def __init__(self, server: ServerProcess, workers: int):
        self.main = server.process.pid
        wait_until(lambda: len(self.workers()) == workers and self.database(), timeout=30,
                   message=f"{workers} workers and the database")

    def workers(self) -> list[int]:
        return sorted(pid for pid in children(self.main) if not is_database(pid) and alive(pid))

    def database(self) -> int | None:
        found = [pid for pid in children(self.main) if is_database(pid) and alive(pid)]
        return found[0] if found else None

    def all(self) -> list[int]:
        return [self.main, *self.workers(), self.database()]


def dump_stacks_of_workers_still_running(workers: list[int], after_seconds: float) -> None:
    """Wait up to `after_seconds` for `workers` to end; those still running then write their threads' stacks to
    the server log (SIGUSR1, see baas.wsgi)."""
    deadline = time.monotonic() + after_seconds
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.02)
    for pid in workers:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass  # it ended just now


def frames_in_baas(output: str) -> list[str]:
    """Lines of dumped stacks (faulthandler's `File "...", line N in f`) that are in the baas package, but for the
    `baas serve` entry below every worker's main thread (granian forks the workers from inside it)."""
    package = Path(baas.__file__).resolve().parent
    entry = tuple(f'File "{package / name}"' for name in ("__main__.py", "server.py"))
    return [line.strip() for line in output.splitlines()
            if line.strip().startswith(f'File "{package}{os.sep}') and not line.strip().startswith(entry)]


def embedded_config(tmp_path: Path, **server) -> dict:
    return {"data_dir": str(tmp_path / "data"), "admin_token": ADMIN_TOKEN,
            "server": {"shutdown_timeout_seconds": 2, **server},
            "mongodb": {"timeout_ms": 500, "embedded": {"ping_interval_seconds": 0.2, "ping_deadline_seconds": 2}}}


def start(config: dict, tmp_path: Path, port: int | None = None) -> ServerProcess:
    return ServerProcess(config, tmp_path, port=port).start()


def create_project(server: ServerProcess, project_id: str) -> None:
    response = requests.post(f"{server.url}/admin/v1/projects", headers=ADMIN, timeout=10,
                             json={"id": project_id, "name": project_id})
    assert response.status_code == 201, response.text


def project_ids(server: ServerProcess) -> list[str]:
    response = requests.get(f"{server.url}/admin/v1/projects", headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    return [project["id"] for project in response.json()]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=10).status_code == 200
    except requests.ConnectionError:
        return False


def test_kill_9_of_the_main_process_leaves_nothing_running(tmp_path):
    config = embedded_config(tmp_path, workers=2)
    server = start(config, tmp_path)
    try:
        tree = Tree(server, workers=2)
        everything = tree.all()
        create_project(server, "before-kill")
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        wait_until(lambda: not any(alive(pid) for pid in everything), timeout=15,
                   message="workers and database to die with the main process")

        # The port and the data folder are free again: a new server starts on both, with the data.
        again = start(config, tmp_path, port=server.port)
        try:
            assert "default" in project_ids(again) and "before-kill" in project_ids(again)
        finally:
            again.stop()
    finally:
        server.stop()


def test_a_killed_worker_is_replaced_and_a_killed_database_restarted(tmp_path):
    server = start(embedded_config(tmp_path, workers=2), tmp_path)
    try:
        tree = Tree(server, workers=2)
        first, second = tree.workers()
        database = tree.database()
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: len(tree.workers()) == 2 and first not in tree.workers(), timeout=30,
                   message="a new worker in place of the killed one")
        assert second in tree.workers(), "the other worker must keep serving"
        assert server.process.poll() is None and tree.database() == database
        # Every request is served (new connections reach the workers that are alive), once the new worker is up.
        wait_until(lambda: _answers(f"{server.url}/readyz"), timeout=30, message="/readyz after the respawn")
        for _ in range(20):
            assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200

        # The database is watched by the serve main process, which the workers connect through.
        create_project(server, "survives")
        os.kill(database, signal.SIGKILL)
        wait_until(lambda: tree.database() not in (None, database), timeout=30, message="a new database process")
        wait_until(lambda: requests.get(f"{server.url}/readyz", timeout=10).status_code == 200, timeout=30,
                   message="/readyz 200 after the database restart")
        assert "survives" in project_ids(server)
        assert not alive(database)
        assert database not in children(server.process.pid), "the dead database was not reaped"
        command = Path(f"/proc/{tree.database()}/cmdline").read_text().split("\0")
        store = MongoStore(f"mongodb://127.0.0.1:{command[command.index('-p') + 1]}/")
        try:
            wait_until(lambda: database_restarts(store) == 1, timeout=10, message="the restart to be counted")
            assert "restarting the embedded database" in server.output()  # and logged
        finally:
            store.close()
    finally:
        server.stop()


def test_workers_that_keep_dying_at_start_do_not_take_the_server_down(tmp_path):
    """granian exits when a worker dies within seconds of being spawned (a crash loop); `baas serve` starts it
    again after a pause, on the same database, and Ctrl-C still ends everything."""
    server = start(embedded_config(tmp_path, workers=1), tmp_path)
    try:
        tree = Tree(server, workers=1)
        database = tree.database()
        for round_number in range(2):  # the second crash loop gets a longer pause than the first
            for _ in range(2):  # a worker killed, then its replacement as soon as it exists
                (worker,) = tree.workers()
                os.kill(worker, signal.SIGKILL)
                wait_until(lambda killed=worker: tree.workers() not in ([], [killed]), timeout=60,
                           message="a worker in place of the killed one")
            wait_until(lambda seen=round_number: server.output().count("kept dying") > seen, timeout=30,
                       message="granian's crash loop, seen by baas serve")
            wait_until(lambda: _answers(f"{server.url}/readyz"), timeout=60, message="/readyz after the restart")
        assert server.process.poll() is None and tree.database() == database
        assert "starting them again in 1 s" in server.output() and "starting them again in 2 s" in server.output()
        create_project(server, "after-crash-loops")
        everything = tree.all()
        os.killpg(server.process.pid, signal.SIGINT)
        server.process.wait(timeout=20)
        wait_until(lambda: not any(alive(pid) for pid in everything), timeout=10, message="nothing left running")
    finally:
        server.stop()


def test_ctrl_c_to_the_process_group_always_ends_the_server_and_it_restarts_at_once(tmp_path):
    """Idle and under load, several times, on one port: a stop leaves TIME-WAIT connections behind (the
    clients send `Connection: close`, so the server closes them), and the next start must not trip over them."""
    config = embedded_config(tmp_path, workers=2)
    port = free_port()
    killed_rounds = []
    for round_number, under_load in enumerate((False, True, False, True)):
        server = start(config, tmp_path, port=port)
        tree = Tree(server, workers=2)
        everything, workers = tree.all(), tree.workers()
        # A worker stopped while granian still starts it can miss the stop (a granian race; the kill after
        # server.shutdown_timeout_seconds ends it). Here the graceful path is under test: wait until both serve.
        wait_until(lambda: server.output().count("Started worker-") == 2, timeout=30, message="both workers started")
        stop_load = threading.Event()
        answered = []

        def load():
            with requests.Session() as session:
                while not stop_load.is_set():
                    try:
                        answered.append(session.get(f"{server.url}/readyz", headers={"Connection": "close"},
                                                    timeout=5).status_code)
                    except requests.RequestException:
                        pass  # the server is stopping

        if round_number == 0:  # a live server's port stays busy for the check (granian binds with SO_REUSEPORT)
            with pytest.raises(ConfigError, match="cannot listen on"):
                check_port_free("127.0.0.1", port)
        for _ in range(5):  # connections the server closes itself, in TIME-WAIT after the stop
            assert requests.get(f"{server.url}/healthz", headers={"Connection": "close"}, timeout=5).ok
        threads = [threading.Thread(target=load, daemon=True) for _ in range(4 if under_load else 0)]
        for thread in threads:
            thread.start()
        if under_load:
            wait_until(lambda: len(answered) > 20, timeout=30, message="load on the server")
        try:
            os.killpg(server.process.pid, signal.SIGINT)
            started = time.monotonic()
            dump_stacks_of_workers_still_running(workers, after_seconds=1.2)
            server.process.wait(timeout=20)
            wait_until(lambda: not any(alive(pid) for pid in everything), timeout=10,
                       message=f"no process left after Ctrl-C (round {round_number}, load={under_load})")
            assert time.monotonic() - started < 20
        finally:
            stop_load.set()
            for thread in threads:
                thread.join(timeout=10)
            if server.process.poll() is None:
                os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait()
        output = server.output()
        assert "Traceback" not in output, output
        if "refused to gracefully stop" in output:
            # granian killed a worker that had not stopped within server.shutdown_timeout_seconds. Our code must
            # never be the reason: the stacks dumped before the kill show no thread in baas (a worker that missed
            # its stop would show requests it still serves; see the relay in baas.wsgi). granian's own worker stop
            # has rare races the kill is there for (its issues #875, #900: a runtime drop or a wakeup lost under
            # CPU pressure; and, seen here, a worker already ended whose end its join did not notice): one such
            # round of the four is tolerated, a pattern of them is not.
            assert not frames_in_baas(output), f"a worker's stop was held up in baas:\n{output}"
            killed_rounds.append(round_number)
    assert len(killed_rounds) <= 1, f"granian had to kill a worker in rounds {killed_rounds}"


def test_sigusr1_makes_a_worker_write_its_stacks_to_the_log_and_carry_on(tmp_path):
    server = start(embedded_config(tmp_path, workers=1), tmp_path)
    try:
        worker, = Tree(server, workers=1).workers()
        os.kill(worker, signal.SIGUSR1)
        wait_until(lambda: "Current thread 0x" in server.output(), timeout=10, message="the stacks in the log")
        assert "pymongo" in server.output()  # every thread's, not only the one the signal interrupted
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert alive(worker) and Tree(server, workers=1).workers() == [worker]
    finally:
        server.stop()


def thread_taking(pid: int, signum: int) -> int:
    """A thread of `pid` other than its main one that does not block `signum` (the kernel may give it a signal)."""
    for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
        if int(task.name) == pid:
            continue
        status = dict(line.split(":\t", 1) for line in (task / "status").read_text().splitlines() if ":\t" in line)
        if not int(status["SigBlk"], 16) & (1 << (signum - 1)):
            return int(task.name)
    raise AssertionError(f"no thread of {pid} takes signal {signum}")


def test_a_worker_stops_when_its_sigterm_lands_on_a_thread_other_than_the_main_one(tmp_path):
    """The kernel hands a process's signal to any of its threads; Python acts on it only in the main thread, which
    a granian worker keeps waiting on a lock. Before baas.wsgi relayed stop signals, such a worker never began its
    stop and was killed after server.shutdown_timeout_seconds (seen under load in CI)."""
    server = start(embedded_config(tmp_path, workers=1), tmp_path)
    try:
        worker, = Tree(server, workers=1).workers()
        wait_until(lambda: "Started worker-1" in server.output(), timeout=30, message="the worker started")
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.tgkill(worker, thread_taking(worker, signal.SIGTERM), signal.SIGTERM) == 0  # glibc 2.30+
        wait_until(lambda: "Stopping worker-1" in server.output(), timeout=10,
                   message="the worker to begin its stop (granian logs it)")
        wait_until(lambda: not alive(worker), timeout=10, message="the worker to end")
        assert "refused to gracefully stop" not in server.output()
    finally:
        server.stop()
