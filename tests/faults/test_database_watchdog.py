"""The database goes away: the embedded one is killed or frozen, an external one is unreachable.

Meanwhile every request that needs it answers 503 in the one error format with Retry-After, /readyz answers 503,
service comes back by itself, and every acknowledged write is still there.
"""
from __future__ import annotations

import os
import signal
import socket
import threading

import pymongo
import pytest

from baas import create_app
from baas.runtime import database_restarts
from baas.storage.embedded import EmbeddedMongo, free_port
from baas.testing import ADMIN_TOKEN, ApiClient, create_project, wait_until

RETRY_AFTER = 7

FAST_FAULTS = {
    # A short server selection timeout makes a request fail fast while the database is away; the watchdog looks
    # often and gives a frozen database one second.
    "timeout_ms": 300,
    "retry_after_seconds": RETRY_AFTER,
    "embedded": {"ping_interval_seconds": 0.2, "ping_deadline_seconds": 1},
}


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == str(RETRY_AFTER)
    body = response.get_json()
    assert body["code"] == 503 and body["status"] == "Service Unavailable"
    assert "database" in body["message"]
    assert "Errno" not in body["message"] and "127.0.0.1" not in body["message"]  # nothing internal leaks


def process_state(pid: int) -> str | None:
    """The /proc state letter of `pid` (Z for a zombie), or None once it is gone and reaped."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


@pytest.fixture(scope="module")
def embedded_app(tmp_path_factory):
    """An app on its own embedded database (as tests and `baas serve --dev` get it), with its watchdog."""
    data_dir = tmp_path_factory.mktemp("embedded-faults")
    app = create_app({"data_dir": str(data_dir), "admin_token": ADMIN_TOKEN, "mongodb": FAST_FAULTS,
                      "rate_limits": {"enabled": False}})
    app.testing = True
    yield app
    app.extensions["baas"].close()


@pytest.fixture(scope="module")
def notes_project(embedded_app):
    client = embedded_app.test_client()
    admin = ApiClient(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    return create_project(admin, client)


class Traffic:
    """Writers and a readiness probe running while the database fails; they keep every answer."""

    def __init__(self, app, server_key: str):
        self.app = app
        self.server_key = server_key
        self.acknowledged: list[str] = []
        self.write_statuses: list[int] = []
        self.ready_statuses: list[int] = []
        self.unavailable = []          # the 503 responses, checked for their shape afterwards
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._write, daemon=True),
                        threading.Thread(target=self._probe, daemon=True)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _write(self):
        client = self.app.test_client()
        n = 0
        while not self.stopping.is_set():
            n += 1
            response = client.post("/v1/collections/notes/documents", json={"n": n},
                                   headers={"X-API-Key": self.server_key})
            self.write_statuses.append(response.status_code)
            if response.status_code == 201:
                self.acknowledged.append(response.get_json()["_id"])
            elif response.status_code == 503:
                self.unavailable.append(response)

    def _probe(self):
        client = self.app.test_client()
        while not self.stopping.is_set():
            response = client.get("/readyz")
            self.ready_statuses.append(response.status_code)
            if response.status_code == 503:
                self.unavailable.append(response)

    def acknowledged_after(self, count: int) -> bool:
        return len(self.acknowledged) > count


def check_fault_and_recovery(app, project, fault) -> None:
    svc = app.extensions["baas"]
    old_pid = svc.embedded.process.pid
    restarts_before = svc.embedded.watchdog.restarts
    with Traffic(app, project.server_key) as traffic:
        wait_until(lambda: traffic.acknowledged_after(5), timeout=30, message="writes before the fault")
        release = fault(svc.embedded, old_pid)
        wait_until(lambda: 503 in traffic.write_statuses and 503 in traffic.ready_statuses, timeout=30,
                   message="503s while the database is away")
        if release is not None:
            release()
        wait_until(lambda: svc.embedded.watchdog.restarts > restarts_before, timeout=30, message="the restart")
        acknowledged_at_restart = len(traffic.acknowledged)
        wait_until(lambda: traffic.acknowledged_after(acknowledged_at_restart + 5), timeout=30,
                   message="writes after the restart")
        wait_until(lambda: traffic.ready_statuses[-1] == 200, timeout=10, message="/readyz 200 again")

    # Only 201 and 503: no 500, no hang turned into something else.
    assert set(traffic.write_statuses) <= {201, 503}, set(traffic.write_statuses)
    assert set(traffic.ready_statuses) <= {200, 503}, set(traffic.ready_statuses)
    for response in traffic.unavailable:
        if response.request.path == "/readyz":
            assert response.headers["Retry-After"] == str(RETRY_AFTER)
            assert response.get_json()["errors"]["mongodb"] != "ok"
        else:
            assert_unavailable(response)

    # The same port and data folder: every acknowledged write is still there, through the same app.
    new_process = svc.embedded.process
    assert new_process.pid != old_pid
    assert process_state(old_pid) is None, "the dead database process was not reaped"
    ids, query = set(), {"limit": 1000}
    while True:
        listed = project.server.get("/v1/collections/notes/documents", query_string=query)
        assert listed.status_code == 200, listed.get_json()
        ids.update(doc["_id"] for doc in listed.get_json()["items"])
        if not listed.get_json().get("next_cursor"):
            break
        query = {"limit": 1000, "cursor": listed.get_json()["next_cursor"]}
    missing = set(traffic.acknowledged) - ids
    assert not missing, f"{len(missing)} acknowledged writes lost"
    # Counted where every process can read it.
    assert database_restarts(svc.mongo) == svc.embedded.watchdog.restarts


def kill_and_hold_the_port(embedded, pid):
    """kill -9, then keep the port busy with a listener that never answers: the restarts fail (and are retried)
    until the port is released, so the outage lasts long enough to be seen on every probe."""
    os.kill(pid, signal.SIGKILL)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the killed server left TIME-WAIT sockets

    def bound():
        try:
            holder.bind(("127.0.0.1", embedded.port))
            return True
        except OSError:  # the killed process still holds it for a moment
            return False

    wait_until(bound, timeout=10, interval=0.01, message="the database port")
    holder.listen()
    return holder.close


def test_killed_embedded_database_is_restarted_and_loses_nothing(embedded_app, notes_project):
    check_fault_and_recovery(embedded_app, notes_project, kill_and_hold_the_port)


def test_frozen_embedded_database_is_killed_and_restarted(embedded_app, notes_project):
    # Requests in flight while it is frozen hang until the watchdog kills it, then answer 503.
    check_fault_and_recovery(embedded_app, notes_project, lambda embedded, pid: os.kill(pid, signal.SIGSTOP))


def test_unreachable_external_mongodb_answers_503_and_recovers_without_restart(tmp_path):
    port = free_port()
    app = create_app({"data_dir": str(tmp_path / "data"), "admin_token": ADMIN_TOKEN,
                      "mongodb": {"uri": f"mongodb://127.0.0.1:{port}/", "timeout_ms": 300,
                                  "retry_after_seconds": RETRY_AFTER}})
    try:
        client = app.test_client()
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert_unavailable(client.get("/admin/v1/projects", headers=admin))
        assert_unavailable(client.post("/admin/v1/projects", headers=admin, json={"id": "late-one", "name": "x"}))
        assert_unavailable(client.get("/v1/project", headers={"X-API-Key": "baas_sk_" + "a" * 40}))
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["Retry-After"] == str(RETRY_AFTER)
        assert client.get("/healthz").status_code == 200  # alive, only not ready

        # The database comes up: the same app serves again, nothing restarted.
        with EmbeddedMongo(tmp_path / "db", port=port):
            wait_until(lambda: client.get("/readyz").status_code == 200, timeout=20, message="/readyz 200")
            created = client.post("/admin/v1/projects", headers=admin, json={"id": "late-one", "name": "x"})
            assert created.status_code == 201, created.get_json()
            assert [p["id"] for p in client.get("/admin/v1/projects", headers=admin).get_json()] == ["late-one"]
    finally:
        app.extensions["baas"].close()


def start_and_ping(data_dir) -> None:
    with EmbeddedMongo(data_dir) as database:
        client = pymongo.MongoClient(database.uri, serverSelectionTimeoutMS=5000)
        try:
            assert client.admin.command("ping")["ok"] == 1
        finally:
            client.close()
        assert database.pid_file.read_text().strip() == str(database.process.pid)


def test_a_pid_file_left_by_a_killed_database_naming_a_zombie_does_not_stop_the_next_start(tmp_path):
    # A database killed while it stopped leaves its pid file; until its new parent reaps it, its pid is a zombie,
    # which nx-27017 itself takes for a database still running.
    zombie = os.fork()
    if zombie == 0:
        os._exit(0)
    try:
        wait_until(lambda: process_state(zombie) == "Z", timeout=10, message="the child to be a zombie")
        (tmp_path / "db").mkdir()
        (tmp_path / "db" / "nx-27017.pid").write_text(str(zombie))
        start_and_ping(tmp_path / "db")
    finally:
        os.waitpid(zombie, 0)


def test_a_pid_file_naming_another_live_process_or_garbage_does_not_stop_the_next_start(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "nx-27017.pid").write_text(str(os.getpid()))  # the pid now belongs to someone else
    start_and_ping(tmp_path / "db")
    (tmp_path / "db" / "nx-27017.pid").write_text("not a pid\n")
    start_and_ping(tmp_path / "db")


def test_a_database_still_running_on_the_folder_is_waited_for_then_named(tmp_path):
    with EmbeddedMongo(tmp_path / "db") as running:
        second = EmbeddedMongo(tmp_path / "db", startup_timeout=0.5)
        with pytest.raises(RuntimeError) as refused:
            second.start()
        assert f"another embedded database (pid {running.process.pid}) is still running" in str(refused.value)
        assert second.process is None
        assert running.pid_file.read_text().strip() == str(running.process.pid)  # its file is left alone


def test_why_the_database_exited_at_start_is_in_the_error(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        database = EmbeddedMongo(tmp_path / "db", port=holder.getsockname()[1])
        with pytest.raises(RuntimeError) as failed:
            database.start()
    finally:
        holder.close()
    message = str(failed.value)
    assert message.startswith("the embedded database exited at start (code 1): ")
    assert "address already in use" in message.lower(), message
    assert message.endswith(f"see {tmp_path / 'db' / 'nx-27017.log'}")


def test_commands_do_not_grow_the_database_log(tmp_path):
    # nx-27017 logs every command at INFO; the watchdog's pings alone came to 20 MB a day.
    with EmbeddedMongo(tmp_path / "db") as database:
        log_file = tmp_path / "db" / "nx-27017.log"
        client = pymongo.MongoClient(database.uri, serverSelectionTimeoutMS=5000)
        try:
            client.admin.command("ping")
            size = log_file.stat().st_size
            for _ in range(100):
                client.admin.command("ping")
            client.notes.items.insert_one({"n": 1})
            assert client.notes.items.find_one({"n": 1})["n"] == 1
            assert log_file.stat().st_size == size, log_file.read_text()[-2000:]
        finally:
            client.close()
