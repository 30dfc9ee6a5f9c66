"""Load benchmark of the documents API: req/s, latency percentiles and server CPU time per request.

Starts `baas serve` on the embedded default (nx-27017 child + local files) in a temporary data folder, defines
an indexed collection, seeds it, then drives each scenario from separate processes (wrk when installed, else a
multiprocessing + http.client fallback) with N keep-alive connections for T seconds.

Each run also measures the same requests against bare Flask views on the same database (floor_app.py, served
by granian like baas), so baas's own share is the difference whatever the machine's load at the time.

CPU per request is read from the server process tree's own CPU time (/proc/<pid>/stat) over each run, split into
baas (the `baas serve` main process and its granian workers) and db (the nx-27017 child), because on a small shared
machine req/s moves with the neighbours while CPU per request stays put.

    python benchmarks/documents.py                      # all default scenarios, 16 connections, 10 s each
    python benchmarks/documents.py --scenarios get --duration 20 --json result.json
    python benchmarks/documents.py --url http://127.0.0.1:8000 --server-key baas_sk_...   # reuse a server

See docs/performance.md for what every number means and a recorded run.
"""
from __future__ import annotations

import argparse
import collections
import http.client
import ipaddress
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

# baas's own query code builds the plans the script prints (planned_commands).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
PYTHON = "/work/venv/bin/python" if os.path.exists("/work/venv/bin/python") else sys.executable
COLLECTION_RULES = {"list": "public", "read": "public", "create": "public", "update": "none", "delete": "none",
                    "aggregate": "public"}
INDEXES = [{"name": "by_group_score", "keys": {"group": 1, "score": -1}}]
# Typed fields, as an app declares them (and as Parse's classes have them): a field the schema keeps scalar
# lets the embedded database answer equality on it from an index (docs/data-api.md, "Fast query shapes").
SCHEMA = {"type": "object", "properties": {
    "group": {"type": "integer"}, "score": {"type": "integer"}, "name": {"type": "string"},
    "active": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"}},
    "price": {"type": "number"}}}
# The owner-rule collection: a signed-in user lists only their own documents (the common mobile case).
OWNER_RULES = {"list": "owner", "read": "owner", "create": "authenticated", "update": "owner", "delete": "owner",
               "aggregate": "owner"}
# Creates go to their own collections, so every query scenario runs over exactly the seeded documents.
WRITES_SUFFIX = "_writes"
OWNED_SUFFIX = "_owned"
GROUPS = 100  # 10,000 documents -> 100 per group, so a query page of 20 is a real top-20 out of 100
BATCH_SIZE = 100
# The load comes from one API key: the default general limit (6000/minute) would turn most of a run into 429s.
# The limiter stays on, so its per-request cost is measured; only its ceiling is lifted.
SERVER_ENV_DEFAULTS = {"BAAS_RATE_LIMITS_API_PER_KEY": "100000000/hour",
                       # The owner-rule scenario's user token must outlive a sweep.
                       "BAAS_AUTH_ACCESS_TOKEN_MINUTES": "600"}
ALL_SCENARIOS = ("healthz", "readyz", "project", "floor_get", "get", "floor_create", "create", "floor_query", "query",
                 "query_owner", "query_page2", "query_count", "update", "update_hot")
# Run again at every --docs count of a sweep; the others run at the first count only.
QUERY_SCENARIOS = ("floor_query", "query", "query_owner", "query_page2", "query_count")
# PATCH bodies of the update scenarios: atomic operators, so concurrent writers of one document all succeed.
UPDATE_BODY = '{"$inc":{"score":1},"$set":{"name":"updated"}}'
HOT_UPDATE_BODY = '{"$inc":{"score":1}}'
DEFAULT_SCENARIOS = "healthz,project,floor_get,get,floor_create,create,floor_query,query,query_owner,query_page2"
# Bare Flask views on the same database (floor_app.py): what Flask + pymongo + granian cost without baas.
FLOOR_SCENARIOS = {"floor_get": "get", "floor_create": "create", "floor_query": "query"}
# The targets, and the bare view it measured beside them (0.36 ms on its machine) for the floor rows.
TARGETS_MS = {"get": 0.45, "create": 0.5, "query": 0.7}
REFERENCE_FLOOR_MS = 0.36
# Work without the documents API; the floor every document request stands on.
BASELINE_SCENARIOS = ("healthz", "readyz", "project")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------------- HTTP helpers

class Api:
    """A tiny keep-alive JSON client for setup (seeding, checks); the load itself never goes through here."""

    def __init__(self, url: str, key: str | None = None, timeout: float = 30.0):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.key = key
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body=None, key: str | None = None,
                token: str | None = None) -> tuple[int, object]:
        headers = {"Accept": "application/json"}
        if key or self.key:
            headers["X-API-Key"] = key or self.key
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=data, headers=headers)
                response = self._conn.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt == 2:
                    raise
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return response.status, payload

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise BenchError(f"--url must be a loopback address (127.0.0.1, ::1, localhost), not {host!r}")


# --------------------------------------------------------------------------------------------- server under test

@dataclass
class Keys:
    client: str | None = None
    server: str | None = None
    admin: str | None = None


class ServerUnderTest:
    """`baas serve` as a child process in its own session, so stopping it never touches anything else."""

    KEY_LINE = re.compile(r"^\s+(client key|server key|admin token)\s+(baas_\S+)")

    def __init__(self, workers: int | None, threads: int | None, data_dir: str | None, env: dict[str, str],
                 startup_timeout: float = 90.0):
        self.owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="baas-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.threads = threads
        self.env = env
        self.startup_timeout = startup_timeout
        self.keys = Keys()
        self.output: collections.deque[str] = collections.deque(maxlen=200)
        self.process: subprocess.Popen | None = None

    def start(self) -> "ServerUnderTest":
        command = [PYTHON, "-m", "baas", "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
                   "--port", str(self.port)]
        if self.workers:
            command += ["--workers", str(self.workers)]
        env = {**os.environ, **self.env}
        if self.threads:
            env["BAAS_SERVER_THREADS"] = str(self.threads)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                        stdin=subprocess.DEVNULL, start_new_session=True, bufsize=0)
        threading.Thread(target=self._read_output, daemon=True).start()
        self._wait_ready()
        return self

    def _read_output(self) -> None:
        # The server's access log comes through this pipe, one line per measured request, and this process
        # shares the machine's cores with the server: reading it a line at a time (and keeping every line) cost
        # client CPU that showed up as noise in the server's figures. 64 KB reads, a bounded tail kept for error
        # messages, and key lines looked for only until the banner's keys are all found.
        fd = self.process.stdout.fileno()
        pending = b""
        keys_wanted = True
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            self.output.extend(line.decode(errors="replace") for line in lines[-self.output.maxlen:])
            if keys_wanted:
                for line in lines:
                    match = self.KEY_LINE.match(line.decode(errors="replace"))
                    if match:
                        kind, value = match.groups()
                        setattr(self.keys, {"client key": "client", "server key": "server",
                                            "admin token": "admin"}[kind], value)
                keys_wanted = None in (self.keys.client, self.keys.server, self.keys.admin)
        if pending:
            self.output.append(pending.decode(errors="replace"))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        api = Api(self.url, timeout=2.0)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise BenchError("baas serve exited during start-up:\n" + "\n".join(list(self.output)[-30:]))
                try:
                    status, _ = api.request("GET", "/readyz")
                except OSError:
                    status = None
                if status == 200 and self.keys.server:
                    return
                time.sleep(0.1)
        finally:
            api.close()
        raise BenchError(f"baas serve was not ready within {self.startup_timeout:.0f}s:\n"
                         + "\n".join(list(self.output)[-30:]))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGINT is what granian and `baas serve` handle as a clean shutdown (workers, then the db child).
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.process is not None:
            # Anything of ours left in the session (a worker, the db child) goes too; the group is ours alone.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class FloorServer:
    """floor_app.py under granian with the server's workers and threads, on the server's database."""

    def __init__(self, mongodb_uri: str, database: str, collection: str, workers: int, threads: int,
                 startup_timeout: float = 30.0, writes: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "BAAS_FLOOR_MONGODB_URI": mongodb_uri, "BAAS_FLOOR_DATABASE": database,
                    "BAAS_FLOOR_COLLECTION": collection, "BAAS_FLOOR_WRITES_COLLECTION": writes or collection}
        self.workers, self.threads = workers, threads
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> "FloorServer":
        command = [PYTHON, "-m", "granian", "--interface", "wsgi", "--factory", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", str(self.workers), "--blocking-threads",
                   str(self.threads), "--no-access-log", "--log-level", "warning",
                   "--working-dir", str(Path(__file__).resolve().parent), "floor_app:create_app"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env,
                                        stdin=subprocess.DEVNULL, start_new_session=True, text=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError("the floor server exited during start-up:\n" + self.process.stderr.read()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"the floor server did not listen within {self.startup_timeout:.0f}s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


def embedded_mongodb_uri(tree: "ProcessTree") -> str | None:
    """The URI of the server's nx-27017 child (it listens on 127.0.0.1, port from its command line)."""
    for pid, role in tree.members().items():
        if role == "db":
            match = re.search(r"(?:^| )(?:-p|--port) (\d+)", _cmdline(pid))
            if match:
                return f"mongodb://127.0.0.1:{match.group(1)}/?directConnection=true"
    return None


# ------------------------------------------------------------------------------------------------ CPU accounting

def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks incl. reaped children) of one process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            raw = handle.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ppid, utime + stime + cutime + cstime


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _all_parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat:
                parents[int(entry)] = stat[0]
    return parents


def listening_pid(port: int) -> int:
    """The topmost process holding the listening socket of `port` (the `baas serve` main process)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(parts[9])
    holders = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                link = os.readlink(f"/proc/{entry}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    holders.add(int(entry))
                    break
        except OSError:
            continue
    if not holders:
        raise BenchError(f"no process of ours listens on port {port}; pass --server-pid")
    parents = _all_parents()
    root = min(holders)
    for pid in holders:
        ancestor = parents.get(pid)
        while ancestor and ancestor not in holders:
            ancestor = parents.get(ancestor)
        if not ancestor:
            root = pid
            break
    # granian workers hold the socket while the main process (and its nx-27017 child) may not: climb to the
    # topmost `baas serve` ancestor so the whole server is counted.
    while parents.get(root, 0) > 1 and "baas" in _cmdline(parents[root]):
        root = parents[root]
    return root


class ProcessTree:
    """CPU seconds of a server's process tree, split into the db child (nx-27017) and everything else (baas)."""

    def __init__(self, root_pid: int):
        self.root_pid = root_pid

    def members(self) -> dict[int, str]:
        parents = _all_parents()
        children: dict[int, list[int]] = {}
        for pid, ppid in parents.items():
            children.setdefault(ppid, []).append(pid)
        roles, stack = {}, [(self.root_pid, "baas")]
        while stack:
            pid, role = stack.pop()
            if role == "baas" and ("nx-27017" in _cmdline(pid) or "nx_27017" in _cmdline(pid)):
                role = "db"
            roles[pid] = role
            stack.extend((child, role) for child in children.get(pid, ()))
        return roles

    def cpu_seconds(self) -> dict[str, float]:
        totals = {"baas": 0, "db": 0}
        for pid, role in self.members().items():
            stat = _stat(pid)
            if stat:
                totals[role] += stat[1]
        return {role: ticks / CLK_TCK for role, ticks in totals.items()}

    def wait_idle(self, deadline_s: float = 60.0, interval: float = 0.5, busy_share: float = 0.05) -> float:
        """Wait until the server stops burning CPU (requests queued when the load stopped are finished),
        so one scenario's backlog is not billed to the next. Returns the seconds waited."""
        started = time.monotonic()
        previous = sum(self.cpu_seconds().values())
        while time.monotonic() - started < deadline_s:
            time.sleep(interval)
            current = sum(self.cpu_seconds().values())
            if current - previous < busy_share * interval:
                break
            previous = current
        return time.monotonic() - started

    def describe(self) -> list[str]:
        return [f"{pid} [{role}] {_cmdline(pid)[:90]}" for pid, role in sorted(self.members().items())]


class FloorTree(ProcessTree):
    """The floor server's CPU as "baas", the database's from the baas server's tree (they share it)."""

    def __init__(self, floor_root: int, server_tree: ProcessTree):
        super().__init__(floor_root)
        self.server_tree = server_tree

    def cpu_seconds(self) -> dict[str, float]:
        return {"baas": super().cpu_seconds()["baas"], "db": self.server_tree.cpu_seconds()["db"]}


# ----------------------------------------------------------------------------------------------------- scenarios

@dataclass
class Scenario:
    name: str
    method: str
    paths: list[str]
    key: str | None
    creates: bool = False  # POST a fresh document body per request
    expect_status: int = 200
    body: str = ""         # one JSON body sent with every request
    token: str | None = None  # a signed-in user's access token (Authorization: Bearer)


def document_for(index: int, rng: random.Random) -> dict:
    return {"group": index % GROUPS, "score": rng.randrange(1_000_000), "name": f"item-{index:06d}",
            "active": index % 3 != 0, "tags": ["bench", f"t{index % 7}"], "price": round(rng.uniform(1, 500), 2)}


def query_path(collection: str, group: int, count: bool = False, cursor: str | None = None) -> str:
    query = {"filter": json.dumps({"group": group}, separators=(",", ":")), "sort": "-score", "limit": "20"}
    if count:
        query["count"] = "true"
    if cursor:
        query["cursor"] = cursor
    return f"/v1/collections/{collection}/documents?{urllib.parse.urlencode(query)}"


@dataclass
class Setup:
    """What one --docs count of a run has seeded: the collections, the ids to GET, the owner-rule user."""
    docs: int
    collection: str
    ids: list[str] = field(default_factory=list)
    user_token: str | None = None
    user_id: str | None = None
    page2_paths: list[str] = field(default_factory=list)
    page2_values: dict = field(default_factory=dict)  # group -> sort values of page 1's last item


def build_scenario(name: str, setup: Setup, load_key: str | None, server_key: str | None = None) -> Scenario:
    collection, ids = setup.collection, setup.ids
    base = f"/v1/collections/{collection}/documents"
    if name == "healthz":
        return Scenario(name, "GET", ["/healthz"], None)
    if name == "readyz":
        return Scenario(name, "GET", ["/readyz"], None)
    if name == "project":  # API key authentication + one marshmallow response, no document work
        return Scenario(name, "GET", ["/v1/project"], load_key)
    if name == "get":
        return Scenario(name, "GET", [f"{base}/{urllib.parse.quote(str(i), safe='')}" for i in ids], load_key)
    if name == "create":
        return Scenario(name, "POST", [f"/v1/collections/{collection}{WRITES_SUFFIX}/documents"], load_key,
                        creates=True, expect_status=201)
    if name == "update":  # operator updates spread over the collection (the rules let only the server key)
        return Scenario(name, "PATCH", [f"{base}/{urllib.parse.quote(str(i), safe='')}" for i in ids], server_key,
                        body=UPDATE_BODY)
    if name == "update_hot":  # every connection updates one document: contention, no 409 expected
        return Scenario(name, "PATCH", [f"{base}/{urllib.parse.quote(str(ids[0]), safe='')}"], server_key,
                        body=HOT_UPDATE_BODY)
    if name in ("query", "query_count"):
        return Scenario(name, "GET", [query_path(collection, g, name == "query_count") for g in range(GROUPS)],
                        load_key)
    if name == "query_owner":  # the same query under the owner rule, as the signed-in user
        return Scenario(name, "GET", [query_path(collection + OWNED_SUFFIX, g) for g in range(GROUPS)], load_key,
                        token=setup.user_token)
    if name == "query_page2":  # the second page of the query: a keyset cursor
        return Scenario(name, "GET", setup.page2_paths, load_key)
    if name == "floor_get":
        return Scenario(name, "GET", [f"/floor/documents/{urllib.parse.quote(str(i), safe='')}" for i in ids], None)
    if name == "floor_create":
        return Scenario(name, "POST", ["/floor/documents"], None, creates=True, expect_status=201)
    if name == "floor_query":
        return Scenario(name, "GET", [f"/floor/documents?group={g}" for g in range(GROUPS)], None)
    raise BenchError(f"unknown scenario {name!r}; choose from {', '.join(ALL_SCENARIOS)}")


# -------------------------------------------------------------------------------------------------- seeding/setup

def define_collection(api: Api, collection: str, rules: dict = COLLECTION_RULES, schema: dict | None = SCHEMA
                      ) -> None:
    status, body = api.request("PUT", f"/v1/collections/{collection}", {"schema": schema, "indexes": INDEXES,
                                                                        "rules": rules})
    if status not in (200, 201):
        raise BenchError(f"PUT /v1/collections/{collection} answered {status}: {body}")


def _find_id(result) -> str | None:
    if isinstance(result, dict):
        if isinstance(result.get("_id"), str):
            return result["_id"]
        for value in result.values():
            if isinstance(value, dict):
                found = _find_id(value)
                if found:
                    return found
    return None


def _progress(done: int, total: int, started: float) -> None:
    rate = done / max(time.monotonic() - started, 1e-9)
    line = f"  seeding {done:>6}/{total} documents ({rate:,.0f}/s)"
    if sys.stderr.isatty():
        print("\r" + line, end="", file=sys.stderr, flush=True)
    elif done == total or done % max(total // 10, BATCH_SIZE) < BATCH_SIZE:
        print(line, file=sys.stderr, flush=True)


def seed(api: Api, collection: str, count: int, owners: list[str] | None = None) -> list[str]:
    """Seed `count` documents; with `owners`, each group's documents are shared out among them."""
    rng = random.Random(20240604)
    documents = [document_for(i, rng) for i in range(count)]
    for i, doc in enumerate(documents if owners else ()):
        # Not i % len(owners): group is i % GROUPS, and every group would belong to one owner.
        doc["_owner"] = owners[(i // GROUPS) % len(owners)]
    ids: list[str] = []
    started = time.monotonic()
    # The operation's verb key: the agreed contract said "action", the implementation may say "op".
    # The first chunk decides; a batch endpoint that takes neither means single creates.
    verb_keys = ["op", "action"]
    position = 0
    while position < count:
        chunk = documents[position:position + BATCH_SIZE]
        if verb_keys:
            status, body = api.request("POST", "/v1/batch", {"operations": [
                {verb_keys[0]: "create", "collection": collection, "document": doc} for doc in chunk]})
            results = body.get("results", body.get("items")) if isinstance(body, dict) else body
            failed = [r for r in results if isinstance(r, dict) and int(r.get("status", 201)) >= 300] \
                if isinstance(results, list) else []
            if position == 0 and (status in (400, 404, 405) or len(failed) == len(chunk)):
                rejected = verb_keys.pop(0)
                if not verb_keys:
                    print(f"  (POST /v1/batch refused {rejected!r}: {str(body)[:200]}; seeding with single "
                          "creates)", file=sys.stderr)
                continue
            if status not in (200, 201, 207):
                raise BenchError(f"POST /v1/batch answered {status}: {str(body)[:500]}")
            if not isinstance(results, list) or len(results) != len(chunk):
                raise BenchError(f"POST /v1/batch gave an unexpected answer: {str(body)[:500]}")
            if failed:
                raise BenchError(f"POST /v1/batch: {len(failed)} operations failed, e.g. {failed[0]}")
            ids.extend(filter(None, (_find_id(r) for r in results)))
        else:
            for doc in chunk:
                status, body = api.request("POST", f"/v1/collections/{collection}/documents", doc)
                if status != 201:
                    raise BenchError(f"create answered {status}: {str(body)[:500]}")
                ids.append(_find_id(body))
        position += len(chunk)
        _progress(position, count, started)
    if count and sys.stderr.isatty():
        print(file=sys.stderr)
    return ids


def existing_ids(api: Api, collection: str, want: int) -> list[str]:
    """Ids to GET when the batch answer did not carry them, or when reusing a seeded server (--docs 0)."""
    ids: list[str] = []
    cursor = None
    for _ in range(want // 1000 + 2):
        path = f"/v1/collections/{collection}/documents?limit=1000&fields=_id"
        if cursor:
            path += "&cursor=" + urllib.parse.quote(cursor)
        status, body = api.request("GET", path)
        if status != 200:
            raise BenchError(f"listing {collection} answered {status}: {str(body)[:300]}")
        ids.extend(item["_id"] for item in body["items"])
        cursor = body.get("next_cursor")
        if not cursor or len(ids) >= want:
            break
    return ids


def sign_up(api: Api, client_key: str | None) -> tuple[str, str]:
    """A fresh signed-in user: (access token, user id)."""
    email = f"bench-{random.getrandbits(40):010x}@example.com"
    status, body = api.request("POST", "/v1/auth/signup", {"email": email, "password": "bench password 2026"},
                               key=client_key)
    if status not in (200, 201) or not isinstance(body, dict) or "access_token" not in body:
        raise BenchError(f"POST /v1/auth/signup answered {status}: {str(body)[:300]}")
    return body["access_token"], body["user"]["id"]


def prepare(api: Api, args, docs: int, position: int, client_key: str | None, log) -> Setup:
    """Define and seed the collections of one --docs count (the first count uses --collection itself)."""
    name = args.collection if position == 0 else f"{args.collection}_{docs}"
    setup = Setup(docs, name)
    define_collection(api, name)
    # Untyped, as in the earlier recorded runs: create measures baas's path, not JSON Schema validation.
    define_collection(api, name + WRITES_SUFFIX, schema=None)
    if docs:
        log(f"seeding {docs} documents into '{name}' ...")
        setup.ids = seed(api, name, docs)
    if len(setup.ids) < min(docs, 1000) or not docs:
        setup.ids = existing_ids(api, name, max(docs, 1000))
    if "query_owner" in args.scenarios:
        define_collection(api, name + OWNED_SUFFIX, OWNER_RULES)
        setup.user_token, setup.user_id = sign_up(api, client_key)
        if docs:
            # Half the documents are the user's: each group holds 50 of theirs among 100.
            log(f"seeding {docs} documents into '{name}{OWNED_SUFFIX}', half of them the user's ...")
            seed(api, name + OWNED_SUFFIX, docs, owners=[setup.user_id, "someone-else"])
    if "query_page2" in args.scenarios:
        for group in range(GROUPS):
            status, body = api.request("GET", query_path(name, group), key=client_key)
            if status == 200 and body.get("next_cursor"):
                setup.page2_paths.append(query_path(name, group, cursor=body["next_cursor"]))
                last = body["items"][-1]
                setup.page2_values.setdefault(group, [last["score"], last["_id"]])
    return setup


# --------------------------------------------------------------------------------------------------- query plans

def planned_commands(name: str, setup: Setup, group: int) -> list[dict] | None:
    """The `find` commands baas's storage adapter sends the embedded database for one request of a query
    scenario, built by baas's own code (filter compiler, rule merge, keyset branches, embedded shapes)."""
    from baas.documents.definitions import Definition, storage_name
    from baas.query import and_filters, compile_filter, keyset_branches
    from baas.storage.mongo import embedded_find_command

    sort = [("score", -1), ("_id", 1)]
    collection = setup.collection
    rule = None
    if name == "query_owner":
        collection, rule = collection + OWNED_SUFFIX, {"_owner": setup.user_id}
    elif name == "floor_query":  # the bare view sends the shape the adapter sends
        return [{"find": storage_name(collection), "filter": {"group": {"$eq": group}}, "sort": dict(sort),
                 "limit": 20}]
    elif name not in ("query", "query_page2"):
        return None
    scalar = Definition("bench", collection, None, schema=SCHEMA, indexes=INDEXES,
                        rules=COLLECTION_RULES).scalar_fields
    # The list rule and the read rule both give the owner filter: the merge keeps one.
    base = and_filters(compile_filter({"group": group}), rule, rule)
    branches = [None]
    if name == "query_page2":
        if not setup.page2_values:
            return None
        values = setup.page2_values.get(group) or next(iter(setup.page2_values.values()))
        branches = keyset_branches(sort, values)
    return [embedded_find_command(storage_name(collection), and_filters(base, branch), None, sort, 0, 21,
                                  scalar_fields=scalar) for branch in branches]


def explain_commands(database_file: Path, commands: list[dict]) -> list[str]:
    """EXPLAIN QUERY PLAN of each command, by nx-27017's own SQL compiler (neosqlite) on the server's file."""
    import neosqlite

    lines = []
    connection = neosqlite.Connection(str(database_file))
    try:
        for command in commands:
            cursor = connection[command["find"]].find(command["filter"]).sort(list(command["sort"].items()))
            cursor = cursor.limit(command["limit"])
            python = cursor._query_helpers._build_simple_where_clause(command["filter"]) is None
            plan = [step["detail"] for step in cursor.explain()["queryPlanner"]["winningPlan"]]
            bounds = " + ".join(f"{b} {command[b]}" for b in ("min", "max") if b in command)
            served = "PYTHON SCAN (filter not compiled to SQL)" if python else (
                "index" if any("USING INDEX" in p or "USING COVERING INDEX" in p for p in plan) else "SQL SCAN")
            lines.append(f"{served}: filter {json.dumps(command['filter'], default=str)}"
                         f"{' ' + bounds if bounds else ''} -> {'; '.join(plan)}")
    finally:
        connection.close()
    return lines


def database_file(server: "ServerUnderTest", api: Api, prefix: str) -> Path | None:
    status, project = api.request("GET", "/v1/project")
    if status != 200:
        return None
    candidates = sorted((server.data_dir / "db").glob(f"{prefix}p_{project['id']}*"))
    return next((c for c in candidates if c.suffix in (".db", ".sqlite", ".sqlite3")), None)


def check_scenario(api: Api, scenario: Scenario) -> str | None:
    """One request before the load: the scenario must answer what it claims to measure, or the numbers lie."""
    body = document_for(0, random.Random(1)) if scenario.creates else json.loads(scenario.body or "null")
    status, payload = api.request(scenario.method, scenario.paths[len(scenario.paths) // 2], body,
                                  key=scenario.key, token=scenario.token)
    if status != scenario.expect_status:
        return f"{scenario.method} {scenario.paths[0]} answered {status}: {str(payload)[:300]}"
    if scenario.name.startswith(("query", "floor_query")):
        items = payload.get("items") if isinstance(payload, dict) else None
        if not items or len(items) != 20:
            return f"query returned {len(items or [])} items, expected 20"
        scores = [item.get("score") for item in items]
        if scores != sorted(scores, reverse=True):
            return "query items are not sorted by -score"
        if scenario.name == "query_count" and not isinstance(payload.get("total"), int):
            return "count=true gave no integer total"
        if scenario.token and len({item.get("_owner") for item in items}) != 1:
            return "the owner-rule query returned documents of more than one owner"
    return None


# ------------------------------------------------------------------------------------------------- load drivers

@dataclass
class LoadResult:
    requests: int
    duration: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    error_detail: dict = field(default_factory=dict)


LUA_TEMPLATE = r"""
local paths_file, method, creates, key, fixed_body = %(paths_file)s, %(method)s, %(creates)s, %(key)s, %(body)s
local token = %(token)s
local paths = {}
local counter = 0
local thread_no = 0
wrk.method = method
wrk.headers["Accept"] = "application/json"
if key ~= "" then wrk.headers["X-API-Key"] = key end
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
if creates or fixed_body ~= "" then wrk.headers["Content-Type"] = "application/json" end

local threads = {}
function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(paths_file) do paths[#paths + 1] = line end
  math.randomseed(os.time() * 1000 + thread_no)
end

function request()
  counter = counter + 1
  local path = paths[math.random(#paths)]
  if creates then
    local body = string.format(
      '{"group":%%d,"score":%%d,"name":"load-%%d-%%d","active":true,"tags":["bench","load"],"price":%%d.5}',
      math.random(0, 99), math.random(0, 999999), thread_no, counter, math.random(1, 499))
    return wrk.format(nil, path, nil, body)
  end
  if fixed_body ~= "" then return wrk.format(nil, path, nil, fixed_body) end
  return wrk.format(nil, path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50":%%d,"p95":%%d,"p99":%%d,"mean":%%f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a valid Lua string literal


def run_wrk(url: str, scenario: Scenario, connections: int, duration: float, threads: int,
            workdir: Path) -> LoadResult:
    paths_file = workdir / f"{scenario.name}.paths"
    paths_file.write_text("\n".join(scenario.paths) + "\n")
    script = workdir / f"{scenario.name}.lua"
    script.write_text(LUA_TEMPLATE % {"paths_file": _lua_string(str(paths_file)),
                                      "method": _lua_string(scenario.method),
                                      "creates": "true" if scenario.creates else "false",
                                      "key": _lua_string(scenario.key or ""),
                                      "body": _lua_string(scenario.body),
                                      "token": _lua_string(scenario.token or "")})
    command = ["wrk", "-t", str(max(1, min(threads, connections))), "-c", str(connections),
               "-d", f"{max(1, round(duration))}s", "--timeout", "10s", "-s", str(script), url]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    match = re.search(r"^WRK_JSON (\{.*\})$", completed.stdout, re.M)
    if completed.returncode != 0 or not match:
        raise BenchError(f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    raw = json.loads(match.group(1))
    detail = {kind: raw[kind] for kind in ("connect", "read", "write", "status", "timeout") if raw[kind]}
    return LoadResult(requests=raw["requests"], duration=raw["duration_us"] / 1e6, errors=sum(detail.values()),
                      p50_ms=raw["p50"] / 1000, p95_ms=raw["p95"] / 1000, p99_ms=raw["p99"] / 1000,
                      mean_ms=raw["mean"] / 1000, error_detail=detail)


def _python_connection_loop(host, port, scenario: Scenario, stop_at: float, seed_value: int, out: dict) -> None:
    rng = random.Random(seed_value)
    headers = {"Accept": "application/json"}
    if scenario.key:
        headers["X-API-Key"] = scenario.key
    if scenario.token:
        headers["Authorization"] = f"Bearer {scenario.token}"
    if scenario.creates or scenario.body:
        headers["Content-Type"] = "application/json"
    conn = None
    counter = 0
    while time.monotonic() < stop_at:
        counter += 1
        path = rng.choice(scenario.paths)
        body = scenario.body.encode() if scenario.body else None
        if scenario.creates:
            body = json.dumps(document_for(seed_value * 1_000_000 + counter, rng)).encode()
        started = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request(scenario.method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            out["latencies"].append(time.perf_counter() - started)
            if not 200 <= response.status < 400:
                out["errors"]["status"] = out["errors"].get("status", 0) + 1
        except (OSError, http.client.HTTPException) as exc:
            kind = "timeout" if isinstance(exc, TimeoutError) else "connect/read"
            out["errors"][kind] = out["errors"].get(kind, 0) + 1
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def _python_load_process(args) -> dict:
    host, port, scenario, connections, duration, seed_value = args
    stop_at = time.monotonic() + duration
    outputs = [{"latencies": [], "errors": {}} for _ in range(connections)]
    started = time.monotonic()
    threads = [threading.Thread(target=_python_connection_loop,
                                args=(host, port, scenario, stop_at, seed_value * 1000 + i, outputs[i]))
               for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 30)
    errors: dict[str, int] = {}
    for out in outputs:
        for kind, value in out["errors"].items():
            errors[kind] = errors.get(kind, 0) + value
    return {"latencies": [lat for out in outputs for lat in out["latencies"]], "errors": errors,
            "duration": time.monotonic() - started}


def _percentile(sorted_values: list[float], percent: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(percent / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def run_python(url: str, scenario: Scenario, connections: int, duration: float, processes: int) -> LoadResult:
    parsed = urllib.parse.urlsplit(url)
    processes = max(1, min(processes, connections))
    shares = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    jobs = [(parsed.hostname, parsed.port, scenario, share, duration, i + 1) for i, share in enumerate(shares)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        results = pool.map(_python_load_process, jobs)
    latencies = sorted(lat for result in results for lat in result["latencies"])
    errors: dict[str, int] = {}
    for result in results:
        for kind, value in result["errors"].items():
            errors[kind] = errors.get(kind, 0) + value
    status_errors = errors.get("status", 0)
    return LoadResult(requests=len(latencies) + sum(errors.values()) - status_errors,
                      duration=max(result["duration"] for result in results), errors=sum(errors.values()),
                      p50_ms=_percentile(latencies, 50) * 1000, p95_ms=_percentile(latencies, 95) * 1000,
                      p99_ms=_percentile(latencies, 99) * 1000,
                      mean_ms=(sum(latencies) / len(latencies) * 1000) if latencies else float("nan"),
                      error_detail=errors)


# --------------------------------------------------------------------------------------------------- the run

@dataclass
class ScenarioResult:
    scenario: str
    connections: int
    duration_s: float
    requests: int
    req_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    errors: int
    error_detail: dict
    baas_cpu_ms_per_req: float
    db_cpu_ms_per_req: float
    total_cpu_ms_per_req: float
    baas_cpu_s: float
    db_cpu_s: float
    round: int = 1
    docs: int = 0


def measure(args, url: str, scenario: Scenario, tree: ProcessTree | None, driver: str, workdir: Path
            ) -> ScenarioResult:
    def load(duration: float) -> LoadResult:
        if driver == "wrk":
            return run_wrk(url, scenario, args.connections, duration, args.wrk_threads, workdir)
        return run_python(url, scenario, args.connections, duration, args.load_processes)

    if args.warmup > 0:
        load(args.warmup)
    before = tree.cpu_seconds() if tree else None
    result = load(args.duration)
    after = tree.cpu_seconds() if tree else None
    if tree:
        tree.wait_idle()
    # No completed request (each one slower than the run): per-request figures do not exist, say so.
    completed = result.requests or float("nan")
    baas_cpu = (after["baas"] - before["baas"]) if tree else float("nan")
    db_cpu = (after["db"] - before["db"]) if tree else float("nan")
    return ScenarioResult(
        scenario=scenario.name, connections=args.connections, duration_s=round(result.duration, 2),
        requests=result.requests, req_per_s=result.requests / result.duration if result.duration else 0.0,
        p50_ms=result.p50_ms, p95_ms=result.p95_ms, p99_ms=result.p99_ms, mean_ms=result.mean_ms,
        errors=result.errors, error_detail=result.error_detail,
        baas_cpu_ms_per_req=baas_cpu * 1000 / completed, db_cpu_ms_per_req=db_cpu * 1000 / completed,
        total_cpu_ms_per_req=(baas_cpu + db_cpu) * 1000 / completed, baas_cpu_s=baas_cpu, db_cpu_s=db_cpu)


def machine_facts(driver: str) -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version
        granian_version = version("granian")
    except Exception:
        granian_version = "?"
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "granian": granian_version, "kernel": platform.release(), "load_generator": driver,
            "loadavg_before": os.getloadavg()[0]}


def _nan_to_null(value):
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _nan_to_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nan_to_null(item) for item in value]
    return value


def start_floor(args, api: Api, tree: ProcessTree, server: "ServerUnderTest | None", collection: str
                ) -> FloorServer:
    """The floor server on the baas server's database and collection (see floor_app.py)."""
    uri = args.floor_mongodb_uri or embedded_mongodb_uri(tree)
    if not uri:
        raise BenchError("the server has no embedded database; pass --floor-mongodb-uri")
    status, project = api.request("GET", "/v1/project")
    if status != 200 or not isinstance(project, dict) or not project.get("id"):
        raise BenchError(f"GET /v1/project answered {status}: {str(project)[:200]}")
    prefix = args.floor_db_prefix if server is None else args.server_env.get("BAAS_MONGODB_DB_PREFIX", "baas_")
    from baas.documents.definitions import storage_name
    return FloorServer(uri, f"{prefix}p_{project['id']}", storage_name(collection), args.workers or 1,
                       args.threads or 4, writes=storage_name(collection + WRITES_SUFFIX)).start()


def format_floor_comparison(results: list[ScenarioResult]) -> str:
    """baas's CPU per request next to the bare view's, measured in the same run, and the issue's targets.

    With several rounds, each round pairs a floor with its baas scenario; the medians are shown, and the
    spread of the per-round differences."""
    first = min((r.docs for r in results), default=0)
    measured = {(r.round, r.scenario): r.baas_cpu_ms_per_req for r in results if r.requests and r.docs == first}
    header = (f"{'path':<8} {'floor CPU':>10} {'baas CPU':>9} {'baas over floor':>16} {'target':>7} "
              f"{'target over ref. floor':>23}  rounds (differences)")
    lines = []
    for floor, name in FLOOR_SCENARIOS.items():
        pairs = [(measured[(r, floor)], measured[(r, name)]) for r, n in measured
                 if n == name and (r, floor) in measured]
        if not pairs:
            continue
        differences = [baas - bare for bare, baas in pairs]
        target = TARGETS_MS[name]
        lines.append(f"{name:<8} {statistics.median(b for b, _ in pairs):>10.3f} "
                     f"{statistics.median(a for _, a in pairs):>9.3f} {statistics.median(differences):>+16.3f} "
                     f"{target:>7.2f} {target - REFERENCE_FLOOR_MS:>+23.2f}  {len(pairs)} "
                     f"({', '.join(f'{d:+.3f}' for d in differences)})")
    if not lines:
        return ""
    return "\n".join(["server CPU ms/request against the bare Flask + pymongo view of the same run (medians):",
                      header, "-" * len(header)] + lines)


# The query targets (#14): an indexed page over 10,000 documents costs the database at most 2 ms and
# reaches 40 % of GET by id's req/s; 100,000 documents cost at most twice that; the owner rule at most 1.5x.
QUERY_DB_CPU_TARGET_MS = 2.0
QUERY_OVER_GET_TARGET = 0.40
GROWTH_TARGET = 2.0
OWNER_TARGET = 1.5


def format_query_targets(results: list[ScenarioResult]) -> str:
    """The query targets, as medians over rounds of figures taken within one run."""
    def median(name: str, docs: int, attribute: str):
        values = [getattr(r, attribute) for r in results if r.scenario == name and r.docs == docs and r.requests]
        return statistics.median(values) if values else None

    counts = sorted({r.docs for r in results})
    if not counts or median("query", counts[0], "req_per_s") is None:
        return ""
    first = counts[0]
    lines = ["query targets (medians over rounds, within this run):"]
    for docs in counts:
        db = median("query", docs, "db_cpu_ms_per_req")
        if db is not None:
            lines.append(f"  query db CPU @{docs}: {db:.3f} ms/request (target <= {QUERY_DB_CPU_TARGET_MS:g})")
    get_rate, query_rate = median("get", first, "req_per_s"), median("query", first, "req_per_s")
    if get_rate:
        lines.append(f"  query req/s / get req/s @{first}: {query_rate / get_rate:.0%} "
                     f"(target >= {QUERY_OVER_GET_TARGET:.0%})")
    for name in ("query", "query_owner", "query_page2"):
        base = median(name, first, "total_cpu_ms_per_req")
        for docs in counts[1:]:
            grown = median(name, docs, "total_cpu_ms_per_req")
            if base and grown:
                lines.append(f"  {name} total CPU @{docs} / @{first}: {grown / base:.2f}x (target <= {GROWTH_TARGET:g}x)")
    for docs in counts:
        public, owner = median("query", docs, "total_cpu_ms_per_req"), median("query_owner", docs,
                                                                                "total_cpu_ms_per_req")
        if public and owner:
            lines.append(f"  query_owner / query total CPU @{docs}: {owner / public:.2f}x (target <= {OWNER_TARGET:g}x)")
    return "\n".join(lines)


def format_table(results: list[ScenarioResult]) -> str:
    header = (f"{'scenario':<22} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} "
              f"{'baas CPU ms/req':>16} {'db CPU ms/req':>14} {'total':>7}")
    lines = [header, "-" * len(header)]
    several_rounds = any(r.round > 1 for r in results)
    sweep = len({r.docs for r in results}) > 1
    for r in results:
        label = f"{r.scenario} #{r.round}" if several_rounds else r.scenario
        if sweep:
            label = f"{label} @{r.docs // 1000}k" if r.docs >= 1000 else f"{label} @{r.docs}"
        if not r.requests:
            lines.append(f"{label:<22} {0:>8} {'-':>8} {'-':>8} {'-':>8} {r.errors:>7} "
                         f"no request finished in {r.duration_s:g}s (server CPU {r.baas_cpu_s:.1f}s baas + "
                         f"{r.db_cpu_s:.1f}s db): try fewer --connections or a longer --duration")
            continue
        lines.append(f"{label:<22} {r.req_per_s:>8.0f} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} {r.p99_ms:>8.2f} "
                     f"{r.errors:>7} {r.baas_cpu_ms_per_req:>16.3f} {r.db_cpu_ms_per_req:>14.3f} "
                     f"{r.total_cpu_ms_per_req:>7.3f}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--connections", "-c", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--duration", "-d", type=float, default=10.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds of load before each scenario")
    parser.add_argument("--docs", default="10000",
                        help="documents to seed (0: use those already there); a comma-separated list (10000,100000) "
                             "is a sweep: the query scenarios run again over each count, in its own collection")
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS,
                        help=f"comma-separated, from: {', '.join(ALL_SCENARIOS)}")
    parser.add_argument("--collection", default="bench", help="collection to define, seed and query")
    parser.add_argument("--url", help="reuse a running server on a loopback address instead of starting one")
    parser.add_argument("--server-key", help="server key of the --url server (defines and seeds the collection)")
    parser.add_argument("--client-key", help="key the load uses with --url (default: the server key)")
    parser.add_argument("--server-pid", type=int,
                        help="root pid of the --url server for CPU accounting (default: who listens on the port)")
    parser.add_argument("--workers", type=int, help="granian worker processes of the started server")
    parser.add_argument("--threads", type=int,
                        help="request threads per worker of the started server (BAAS_SERVER_THREADS)")
    parser.add_argument("--env", action="append", default=[], metavar="BAAS_NAME=VALUE",
                        help="config for the started server, repeatable, e.g. BAAS_RATE_LIMITS_ENABLED=false "
                             f"(default adds {SERVER_ENV_DEFAULTS})")
    parser.add_argument("--data-dir", help="data folder of the started server (default: a temporary one)")
    parser.add_argument("--load-with", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk when installed, else multiprocessing + http.client")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1 leaves the cores to the server)")
    parser.add_argument("--load-processes", type=int, default=2, help="processes of the Python load generator")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the scenario list this many times, interleaved; comparisons take the median")
    parser.add_argument("--floor-mongodb-uri",
                        help="with --url: the server's MongoDB, for the floor_* scenarios (default: its nx-27017)")
    parser.add_argument("--floor-db-prefix", default="baas_", help="with --url: the server's mongodb.db_prefix")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="also write the results as JSON to PATH (or stdout when no PATH)")
    args = parser.parse_args(argv)
    args.server_env = dict(SERVER_ENV_DEFAULTS)
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("BAAS_"):
            parser.error(f"--env takes BAAS_NAME=VALUE, got {item!r}")
        args.server_env[name] = value
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    for name in args.scenarios:
        if name not in ALL_SCENARIOS:
            parser.error(f"unknown scenario {name!r}; choose from {', '.join(ALL_SCENARIOS)}")
    try:
        args.docs = [int(count) for count in str(args.docs).split(",") if count.strip()]
    except ValueError:
        parser.error(f"--docs takes counts separated by commas, got {args.docs!r}")
    if not args.docs:
        parser.error("--docs needs at least one count")
    if args.connections < 1 or args.duration <= 0 or min(args.docs) < 0 or args.rounds < 1:
        parser.error("--connections, --duration and --rounds must be positive, --docs not negative")
    if args.url and not args.server_key and any(n not in BASELINE_SCENARIOS for n in args.scenarios):
        parser.error("--url needs --server-key for the document scenarios")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json == "-" else print
    driver = args.load_with
    if driver == "auto":
        driver = "wrk" if shutil.which("wrk") else "python"
    if driver == "wrk" and not shutil.which("wrk"):
        raise BenchError("wrk is not installed (apt-get install wrk), use --load-with python")

    server = floor = None
    workdir = Path(tempfile.mkdtemp(prefix="baas-bench-load-"))
    results: list[ScenarioResult] = []
    skipped: dict[str, str] = {}
    try:
        if args.url:
            require_loopback(args.url)
            url = args.url.rstrip("/")
            keys = Keys(client=args.client_key or args.server_key, server=args.server_key)
            root_pid = args.server_pid or listening_pid(urllib.parse.urlsplit(url).port or 80)
        else:
            log("starting baas serve on the embedded default ...")
            server = ServerUnderTest(args.workers, args.threads, args.data_dir, args.server_env).start()
            url, keys, root_pid = server.url, server.keys, server.process.pid
        tree = ProcessTree(root_pid)
        facts = machine_facts(driver)
        log(f"server {url}; load: {driver}, {args.connections} connections, {args.duration:g}s per scenario "
            f"(+{args.warmup:g}s warm-up); {facts['cpus']} CPUs ({facts['cpu_model']})")
        for line in tree.describe():
            log(f"  process {line}")

        setup_api = Api(url, keys.server)
        load_key = keys.client or keys.server
        wants_documents = any(name not in BASELINE_SCENARIOS for name in args.scenarios)
        plans: dict[str, list[str]] = {}
        sweep = len(args.docs) > 1
        for position, docs in enumerate(args.docs):
            names = args.scenarios if position == 0 else [n for n in args.scenarios if n in QUERY_SCENARIOS]
            setup = Setup(docs, args.collection)
            if wants_documents:
                try:
                    setup = prepare(setup_api, args, docs, position, load_key, log)
                except BenchError as exc:
                    log(f"documents API not usable, running only the baseline scenarios: {exc}")
                    wants_documents = False
                    for name in args.scenarios:
                        if name not in BASELINE_SCENARIOS:
                            skipped[name] = str(exc)
            if floor is not None:
                floor.stop()
                floor = None
            floor_url = floor_tree = floor_api = None
            wanted_floors = [name for name in names if name in FLOOR_SCENARIOS and name not in skipped]
            if wanted_floors:
                try:
                    floor = start_floor(args, setup_api, tree, server, setup.collection)
                except BenchError as exc:
                    log(f"floor scenarios not measured: {exc}")
                    skipped.update(dict.fromkeys(wanted_floors, str(exc)))
                else:
                    floor_url, floor_api = floor.url, Api(floor.url)
                    floor_tree = FloorTree(floor.process.pid, tree)
            if server is not None and wants_documents:
                found = database_file(server, setup_api, args.server_env.get("BAAS_MONGODB_DB_PREFIX", "baas_"))
                for name in names:
                    commands = planned_commands(name, setup, GROUPS // 2) if found else None
                    if commands:
                        label = f"{name} @{docs}" if sweep else name
                        plans[label] = explain_commands(found, commands)
                        log(f"plan of {label}:")
                        for line in plans[label]:
                            log(f"  {line}")
            # Rounds interleave the scenarios (floor_get, get, floor_get, get, ...) so that a neighbour's burst
            # lands on both sides of a comparison; the comparison then takes the median over rounds.
            for round_number, name in ((r, n) for r in range(1, args.rounds + 1) for n in names):
                if name in skipped:
                    continue
                if name in ("get", "floor_get", "update", "update_hot") and not setup.ids:
                    skipped[name] = "no document ids to GET"
                    continue
                if name == "query_page2" and not setup.page2_paths:
                    skipped[name] = "no query had a second page"
                    continue
                scenario = build_scenario(name, setup, load_key, keys.server)
                is_floor = name in FLOOR_SCENARIOS
                problem = check_scenario(floor_api if is_floor else setup_api, scenario)
                if problem:
                    skipped[name] = problem
                    log(f"skipping {name}: {problem}")
                    continue
                where = f" over {docs} documents" if sweep else ""
                log(f"running {name}{where} ..." if args.rounds == 1
                    else f"running {name}{where} (round {round_number}) ...")
                result = measure(args, floor_url if is_floor else url, scenario,
                                 floor_tree if is_floor else tree, driver, workdir)
                result.round, result.docs = round_number, docs
                results.append(result)
            if floor_api is not None:
                floor_api.close()
        setup_api.close()

        log("")
        log(format_table(results))
        comparison = format_floor_comparison(results)
        if comparison:
            log("")
            log(comparison)
        targets = format_query_targets(results)
        if targets:
            log("")
            log(targets)
        for name, reason in skipped.items():
            log(f"not measured: {name} ({reason[:200]})")
        if args.json:
            document = {"machine": facts, "url": url,
                        "server_env": None if args.url else args.server_env,
                        "server_threads": args.threads, "server_workers": args.workers, "connections": args.connections, "duration_s": args.duration,
                        "warmup_s": args.warmup, "docs": args.docs, "results": [asdict(r) for r in results],
                        "plans": plans, "skipped": skipped}
            text = json.dumps(_nan_to_null(document), indent=2)
            if args.json == "-":
                print(text)
            else:
                Path(args.json).write_text(text + "\n")
                log(f"JSON written to {args.json}")
        return 0 if results and not skipped else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if floor is not None:
            floor.stop()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
