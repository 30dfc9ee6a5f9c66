"""Scale-out, shown: two `baas serve` and two `baas worker` processes on one database and one storage.

Everything the processes share goes through MongoDB (keys, sessions, rate-limit counters, job schedules, the push
queue, metrics of background work); nothing lives in one process only. One cluster serves the whole module.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from baas.testing import ADMIN_TOKEN, ServerProcess, WorkerProcess, servers_config, wait_until, with_overrides

from push_receiver import PUSH_CONFIG  # tests/push, put on the path by tests/ops/conftest.py

HERE = Path(__file__).resolve().parent

PASSWORD = "correct horse battery"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ACCOUNT_LIMIT = 5


class Cluster:
    def __init__(self, config: dict, folder: Path):
        self.config = config
        self.folder = folder
        self.env = {"PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        self.servers: list[ServerProcess] = []
        self.workers: list[WorkerProcess] = []

    def start(self) -> "Cluster":
        for _ in range(2):
            self.servers.append(ServerProcess(self.config, self.folder, env=self.env).start())
        for number in range(2):
            self.workers.append(WorkerProcess(self.config, self.folder, f"worker-{number}", self.env).start())
        return self

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()

    def stop(self) -> None:
        self.stop_workers()
        for server in self.servers:
            server.stop()

    def mongo(self):
        from baas.storage.mongo import MongoStore

        return MongoStore(self.config["mongodb"]["uri"], self.config["mongodb"]["db_prefix"])


@pytest.fixture(scope="module")
def cluster(mongo_uri, s3_settings, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale-out")
    config = with_overrides(servers_config(mongo_uri, s3_settings, folder / "data"), {
        **PUSH_CONFIG,
        "plugins.modules": ["scale_plugin"], "plugins.enabled": ["scale_plugin"], "plugins.folders": [],
        "plugins.settings": {"scale_plugin": {"folder": str(folder)}},
        "rate_limits.auth_per_account": f"{ACCOUNT_LIMIT}/hour", "rate_limits.auth_per_ip": "1000/minute",
        "keys.cache_seconds": 1,
    })
    started = Cluster(config, folder)
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture(scope="module")
def app_keys(cluster):
    """A project made through the first API: (client key, server key id, server key)."""
    first = cluster.servers[0].url
    assert requests.post(first + "/admin/v1/projects", json={"id": "scaled", "name": "scaled"}, headers=ADMIN,
                         timeout=10).status_code == 201
    client = requests.post(first + "/admin/v1/projects/scaled/keys", json={"kind": "client", "name": "c"},
                           headers=ADMIN, timeout=10).json()
    server = requests.post(first + "/admin/v1/projects/scaled/keys", json={"kind": "server", "name": "s"},
                           headers=ADMIN, timeout=10).json()
    return client["key"], server["id"], server["key"]


def _sign_up(url: str, key: str, email: str) -> dict:
    response = requests.post(url + "/v1/auth/signup", json={"email": email, "password": PASSWORD},
                             headers={"X-API-Key": key}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def _login(url: str, key: str, email: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(url + "/v1/auth/login", json={"email": email, "password": password},
                         headers={"X-API-Key": key}, timeout=10)


def test_a_key_revoked_through_one_api_is_refused_by_the_other(cluster, app_keys):
    first, second = (server.url for server in cluster.servers)
    key = requests.post(first + "/admin/v1/projects/scaled/keys", json={"kind": "server", "name": "doomed"},
                        headers=ADMIN, timeout=10).json()
    status = lambda: requests.get(second + "/v1/project", headers={"X-API-Key": key["key"]},  # noqa: E731
                                  timeout=10).status_code
    assert status() == 200  # now in the second API's key cache
    revoked = requests.post(f"{first}/admin/v1/projects/scaled/keys/{key['id']}/revoke", headers=ADMIN, timeout=10)
    assert revoked.status_code == 200, revoked.text
    started = time.monotonic()
    wait_until(lambda: status() == 401, timeout=10, message="the other API refusing the revoked key")
    assert time.monotonic() - started < cluster.config["keys"]["cache_seconds"] + 2


def test_one_users_rate_limit_is_shared_by_both_apis(cluster, app_keys):
    client_key = app_keys[0]
    urls = [server.url for server in cluster.servers]
    _sign_up(urls[0], client_key, "limited@example.com")
    # Limits count in fixed windows (an hour here): logins on both sides of a window's end would be counted apart.
    if 3600 - time.time() % 3600 < 30:
        wait_until(lambda: time.time() % 3600 < 1800, timeout=40, message="the next rate-limit window")
    answers = [_login(urls[attempt % 2], client_key, "limited@example.com").status_code
               for attempt in range(ACCOUNT_LIMIT + 1)]
    # Each API saw 3 of the 6 logins, fewer than the limit: only a counter they share refuses the last one.
    assert answers == [200] * ACCOUNT_LIMIT + [429], answers
    refused = _login(urls[0], client_key, "limited@example.com")
    assert refused.status_code == 429 and refused.json()["code"] == 429 and "Retry-After" in refused.headers


def test_a_password_change_on_one_api_ends_sessions_on_the_other(cluster, app_keys):
    client_key = app_keys[0]
    first, second = (server.url for server in cluster.servers)
    mine = _sign_up(first, client_key, "mover@example.com")
    other = _login(second, client_key, "mover@example.com").json()

    def me(url, token):
        return requests.get(url + "/v1/auth/me", headers={"X-API-Key": client_key,
                                                         "Authorization": f"Bearer {token}"}, timeout=10)

    assert me(second, other["access_token"]).status_code == 200  # trusted in the second API's cache
    changed = requests.post(first + "/v1/auth/me/password", json={"old": PASSWORD, "new": "a brand new phrase"},
                            headers={"X-API-Key": client_key, "Authorization": f"Bearer {mine['access_token']}"},
                            timeout=10)
    assert changed.status_code == 204, changed.text
    wait_until(lambda: me(second, other["access_token"]).status_code == 401, timeout=10,
               message="the other session's access token refused by the other API")
    refresh = requests.post(second + "/v1/auth/refresh", json={"refresh_token": other["refresh_token"]},
                            headers={"X-API-Key": client_key}, timeout=10)
    assert refresh.status_code == 401
    assert me(second, mine["access_token"]).status_code == 200  # the session that changed it stays
    assert _login(second, client_key, "mover@example.com").status_code == 401
    assert _login(second, client_key, "mover@example.com", "a brand new phrase").status_code == 200


def test_a_scheduled_push_is_delivered_once(cluster, app_keys, receiver):
    client_key, _, server_key = app_keys
    first, second = (server.url for server in cluster.servers)
    user = _sign_up(first, client_key, "listener@example.com")
    devices = [receiver.device() for _ in range(3)]
    for device in devices:
        response = requests.post(second + "/v1/push/subscriptions", json=device.subscription(), timeout=10,
                                 headers={"X-API-Key": client_key, "Authorization": f"Bearer {user['access_token']}"})
        assert response.status_code == 201, response.text
    send_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    sent = requests.post(first + "/v1/push/messages", json={"audience": {"all": True}, "send_at": send_at,
                                                            "notification": {"title": "scaled"}},
                         headers={"X-API-Key": server_key}, timeout=10)
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]

    def status():
        return requests.get(f"{second}/v1/push/messages/{message_id}", headers={"X-API-Key": server_key},
                            timeout=10).json()

    assert status()["status"] == "queued"  # not before send_at
    wait_until(lambda: status()["status"] == "done", timeout=60, message="the scheduled message delivered")
    assert [[r.payload["title"] for r in receiver.for_device(d)] for d in devices] == [["scaled"]] * 3
    assert status()["counts"]["sent"] == 3


def test_a_scheduled_job_fires_once_per_time_and_worker_metrics_reach_the_scrape(cluster, app_keys):
    mongo = cluster.mongo()
    try:
        runs = mongo.platform["job_runs"]
        finished = lambda: list(runs.find({"job": "scale_plugin.beat", "status": "ok"}))  # noqa: E731
        wait_until(lambda: len(finished()) >= 3, timeout=60, message="three scheduled runs")
        cluster.stop_workers()  # a stopped worker flushes its last counts
        done = finished()
        everything = list(runs.find({"job": "scale_plugin.beat"}))
    finally:
        mongo.close()
    fire_times = [run["fire_time"] for run in everything]
    assert len(fire_times) == len(set(fire_times)), "a scheduled time ran twice"
    beats = (cluster.folder / "beats").read_text().split()
    assert len(beats) == len(done) == len(everything)  # each recorded run ran its handler exactly once
    assert len({run["worker"] for run in done}) >= 1

    scraped = requests.get(cluster.servers[1].url + "/metrics", headers=ADMIN, timeout=10)
    assert scraped.status_code == 200
    from prometheus_client.parser import text_string_to_metric_families

    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(scraped.text) for s in family.samples}
    # Counted in the worker processes, shown by an API process that never ran a job or sent a push.
    assert values[("baas_job_runs_total", (("outcome", "succeeded"),))] == len(done)
    assert values[("baas_push_deliveries_total", (("outcome", "delivered"),))] == 3
