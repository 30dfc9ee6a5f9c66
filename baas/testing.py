"""Test support: real protocol servers and an app wired to them, for baas's tests and plugin authors' tests.

Use from a conftest.py with `from baas.testing import *`. The database and S3 servers are the stand-ins
(nx-27017, moto) unless BAAS_TEST_MONGODB_URI / BAAS_TEST_S3_ENDPOINT point at a real MongoDB and MinIO.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from baas.storage.embedded import EmbeddedMongo, die_with_parent, free_port

ADMIN_TOKEN = "test-admin-token-" + "x" * 16

__all__ = ["mongo_uri", "s3_settings", "base_config", "make_app", "app", "client", "admin", "project",
           "ApiClient", "ProjectKeys", "wait_until", "wait_ready", "ServerProcess", "server_process", "WorkerProcess",
           "ADMIN_TOKEN",
           "make_user", "sign_up_user", "admin_client", "create_project", "project_with_plugin"]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def wait_ready(process, url: str, output, timeout: float = 30) -> None:
    """Poll a started `baas serve` until /readyz answers 200; fail with its output if it exits first."""
    def ready():
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{output()}")
        try:
            return requests.get(url + "/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, timeout=timeout, message=f"/readyz 200 on {url}")


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    uri = os.environ.get("BAAS_TEST_MONGODB_URI")
    if uri:
        yield uri
        return
    server = EmbeddedMongo(tmp_path_factory.mktemp("nx-27017")).start()
    try:
        yield server.uri
    finally:
        server.stop()


def _start_moto(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               preexec_fn=die_with_parent)

    def up():
        if process.poll() is not None:
            raise RuntimeError("moto server exited at start")
        try:
            return requests.get(f"http://127.0.0.1:{port}/", timeout=0.5).status_code < 500
        except requests.RequestException:
            return False

    wait_until(up, timeout=30, message="the moto S3 server")
    return process, port


@pytest.fixture(scope="session")
def s3_settings(tmp_path_factory):
    endpoint = os.environ.get("BAAS_TEST_S3_ENDPOINT")
    if endpoint:
        yield {
            "endpoint": endpoint,
            "access_key": os.environ.get("BAAS_TEST_S3_ACCESS_KEY", "minioadmin"),
            "secret_key": os.environ.get("BAAS_TEST_S3_SECRET_KEY", "minioadmin"),
            "secure": os.environ.get("BAAS_TEST_S3_SECURE", "false").lower() in ("1", "true", "yes"),
            "bucket": "baas-test-" + secrets.token_hex(4),
        }
        return
    process, port = _start_moto(tmp_path_factory)
    try:
        yield {"endpoint": f"127.0.0.1:{port}", "access_key": "test", "secret_key": "test", "secure": False,
               "bucket": "baas-test-" + secrets.token_hex(4)}
    finally:
        process.terminate()
        process.wait(timeout=10)


def servers_config(mongo_uri: str, s3_settings: dict, data_dir: Path) -> dict:
    """A config on the test servers with its own databases (a fresh db_prefix each call)."""
    return {
        "data_dir": str(data_dir),
        "admin_token": ADMIN_TOKEN,
        "mongodb": {"uri": mongo_uri, "db_prefix": "t" + secrets.token_hex(4) + "_"},
        "storage": {"s3": dict(s3_settings)},
        "jwt": {"secret": "test-secret-" + "y" * 32},
        # Fixed like jwt.secret: apps and servers of one test may use other data folders on the same database.
        "secrets": {"encryption_key": "test-encryption-key-" + "k" * 24},
        "keys": {"cache_seconds": 0.5},
    }


@pytest.fixture
def base_config(mongo_uri, s3_settings, tmp_path):
    """A config on the test servers with its own databases (a fresh db_prefix per test)."""
    return servers_config(mongo_uri, s3_settings, tmp_path / "data")


def with_overrides(config: dict, overrides: dict | None) -> dict:
    """A deep copy of `config` with flat dotted keys ({"rate_limits.enabled": False}) set."""
    config = json.loads(json.dumps(config))
    for dotted, value in (overrides or {}).items():
        node = config
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config


@pytest.fixture
def make_app(base_config):
    """Build extra apps (each its own 'process' view of the same databases)."""
    from baas import create_app
    from baas.runtime import ensure_indexes

    built = []

    def build(overrides: dict | None = None):
        config = with_overrides(base_config, overrides)
        application = create_app(config)
        application.testing = True
        ensure_indexes(application.extensions["baas"])
        built.append(application)
        return application

    yield build
    for application in built:
        application.extensions["baas"].close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


class ApiClient:
    """A test client that sends one identity's headers on every request."""

    def __init__(self, client, headers: dict):
        self.client = client
        self.headers = headers

    def with_headers(self, **extra) -> "ApiClient":
        return ApiClient(self.client, {**self.headers, **extra})

    def with_token(self, token: str) -> "ApiClient":
        return self.with_headers(Authorization=f"Bearer {token}")

    def open(self, method: str, path: str, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, **kw):
        return self.open("GET", path, **kw)

    def post(self, path, **kw):
        return self.open("POST", path, **kw)

    def put(self, path, **kw):
        return self.open("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.open("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.open("DELETE", path, **kw)


@pytest.fixture
def admin(client):
    return ApiClient(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"})


@dataclass
class ProjectKeys:
    id: str
    client_key: str
    server_key: str
    client: ApiClient       # sends the client key
    server: ApiClient       # sends the server key


def create_project(admin: ApiClient, client, project_id: str | None = None, settings: dict | None = None):
    project_id = project_id or "p-" + secrets.token_hex(4)
    body = {"id": project_id, "name": project_id}
    if settings:
        body["settings"] = settings
    response = admin.post("/admin/v1/projects", json=body)
    assert response.status_code == 201, response.get_json()
    keys = {}
    for kind in ("client", "server"):
        response = admin.post(f"/admin/v1/projects/{project_id}/keys", json={"kind": kind, "name": kind})
        assert response.status_code == 201, response.get_json()
        keys[kind] = response.get_json()["key"]
    return ProjectKeys(project_id, keys["client"], keys["server"],
                       ApiClient(client, {"X-API-Key": keys["client"]}),
                       ApiClient(client, {"X-API-Key": keys["server"]}))


@pytest.fixture
def project(admin, client):
    return create_project(admin, client)


def admin_client(app) -> ApiClient:
    """A test client of `app` that sends the platform admin token."""
    return ApiClient(app.test_client(), {"Authorization": f"Bearer {ADMIN_TOKEN}"})


def project_with_plugin(app, plugin: str, settings: dict | None = None) -> ProjectKeys:
    """A new project of `app` with `plugin` enabled (and its settings checked) through the admin API."""
    admin = admin_client(app)
    project = create_project(admin, app.test_client())
    body = {"settings": settings} if settings is not None else {}
    response = admin.post(f"/admin/v1/projects/{project.id}/plugins/{plugin}", json=body)
    assert response.status_code == 201, response.get_json()
    return project


class ServerProcess:
    """`baas serve` in a child process on a free port, for tests that need several real processes."""

    def __init__(self, config: dict, tmp_path: Path, port: int | None = None, env: dict | None = None):
        self.port = port or free_port()
        self.extra_env = dict(env or {})  # e.g. PYTHONPATH for plugin modules of a test
        self.config = json.loads(json.dumps(config))
        self.config.setdefault("server", {}).update({"port": self.port, "host": "127.0.0.1"})
        self.config_path = tmp_path / f"server-{self.port}.yaml"
        self.config_path.write_text(json.dumps(self.config))  # JSON is valid YAML
        self.log_path = tmp_path / f"server-{self.port}.log"
        self.process = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAAS_")}
        env.update(self.extra_env)
        # Its own process group, as a terminal gives it (a test may signal the whole group); no orphans if pytest
        # is killed.
        self.process = subprocess.Popen([sys.executable, "-m", "baas", "serve", "--config", str(self.config_path)],
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                        preexec_fn=die_with_parent, start_new_session=True)

        wait_ready(self.process, self.url, lambda: self.log_path.read_text(errors="replace"))
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class WorkerProcess:
    """`baas worker` in a child process (background work: push delivery, jobs, sweeps) on a test config."""

    def __init__(self, config: dict, tmp_path: Path, name: str = "worker", env: dict | None = None):
        self.config_path = tmp_path / f"{name}.yaml"
        self.config_path.write_text(json.dumps(config))  # JSON is valid YAML
        self.log_path = tmp_path / f"{name}.log"
        self.extra_env = dict(env or {})
        self.process = None

    def start(self) -> "WorkerProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAAS_")}
        env.update(self.extra_env)
        self.process = subprocess.Popen([sys.executable, "-m", "baas", "worker", "--config", str(self.config_path)],
                                        stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, preexec_fn=die_with_parent)
        return self

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM, so the worker finishes its round and flushes what it counted; killed past `timeout`."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def server_process(base_config, tmp_path):
    """Start `baas serve` processes sharing the test databases: `server_process()` -> ServerProcess."""
    started = []

    def start(overrides: dict | None = None) -> ServerProcess:
        config = with_overrides(base_config, overrides)
        server = ServerProcess(config, tmp_path).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# ---- end users (baas.auth)

def sign_up_user(project: ProjectKeys, email: str | None = None, password: str = "correct horse battery",
                 roles: list | None = None) -> ApiClient:
    """Sign a user up through the API (and give it roles through the server-key users API)."""
    email = email or f"user-{secrets.token_hex(4)}@example.com"
    response = project.client.post("/v1/auth/signup", json={"email": email, "password": password})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    if roles:
        user_id = body["user"]["id"]
        response = project.server.patch(f"/v1/users/{user_id}", json={"roles": list(roles)})
        assert response.status_code == 200, response.get_json()
        response = project.client.post("/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
    user = project.client.with_token(body["access_token"])
    user.user_id = body["user"]["id"]
    user.access_token = body["access_token"]
    user.refresh_token = body["refresh_token"]
    user.email = email
    return user


@pytest.fixture
def make_user():
    """`make_user(project, email=None, password=..., roles=None)` -> ApiClient of a signed-in user.

    The client sends the project's client key and the user's access token; it also has .user_id,
    .access_token, .refresh_token and .email.
    """
    return sign_up_user
