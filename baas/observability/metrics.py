"""Prometheus metrics of one app, correct across several server worker processes.

`baas serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before its workers start (prepare_multiprocess_dir);
prometheus_client then keeps every value in per-process files there and /metrics sums them, so whichever worker
answers the scrape reports the whole server. Without that variable (tests, `--dev`) values live in this process.

Features count their events through named methods, so metric names and labels stay in this one file:

    services().metrics.push_delivery("delivered")
    services().metrics.job_run("failed")
    services().metrics.file_bytes("in", 1024)

Restarts of the embedded database are counted by the watchdog in the platform database (it runs in the
`baas serve` main process, which serves no scrapes), and read from there at scrape time.

Job runs and push deliveries happen in `baas worker` processes, often on other hosts than the API, so they are
summed in MongoDB instead (platform collection `metrics_counters`): each process adds its counts in memory and
flushes them every few seconds (the `metrics` background runner, and at every scrape and shutdown); a scrape of
any API process reads the totals of every worker.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
from collections import Counter as Tally
from pathlib import Path

log = logging.getLogger("baas.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds; API requests are mostly a few milliseconds, the top buckets catch slow queries and uploads.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PUSH_OUTCOMES = ("delivered", "expired", "rejected", "retried", "failed", "unconfirmed")
JOB_OUTCOMES = ("succeeded", "failed", "timed_out", "skipped")
FILE_DIRECTIONS = ("in", "out")
SHARED_COLLECTION = "metrics_counters"  # platform database: one document per counter family, a field per outcome
FLUSH_SECONDS = 2.0
# Counters of background work, summed across processes in MongoDB: (family, help, label name, label values).
SHARED_FAMILIES = {
    "push_deliveries": ("baas_push_deliveries", "Push notifications handed to push services, by outcome.",
                        "outcome", PUSH_OUTCOMES),
    "job_runs": ("baas_job_runs", "Background job runs, by outcome.", "outcome", JOB_OUTCOMES),
}


def prepare_multiprocess_dir(config: dict) -> Path:
    """Empty (or create) the metrics folder and export it to the workers about to start.

    Must run before prometheus_client is first imported in this process: the library picks its value storage
    at import. Files left by an earlier run would otherwise be summed into this run's counters.
    """
    folder = Path(config["metrics"]["dir"] or Path(config["data_dir"]) / "metrics")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


class Metrics:
    """The metrics of one app, in a registry of its own (no process-global registry)."""

    def __init__(self, database_restarts=None, shared=None):
        """`database_restarts`: a callable giving how often the embedded database was restarted (None: no
        embedded database, no such metric). `shared`: the MongoDB collection that sums background-work counters
        across processes (None: kept in this process only)."""
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV)
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter("baas_http_requests", "HTTP requests answered, by route template and status.",
                                ["method", "route", "status"], registry=registry)
        self.latency = Histogram("baas_http_request_duration_seconds", "Time to answer HTTP requests.",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=registry)
        # Bounded by the app's routes (unknown paths share one route label) times methods and statuses.
        self._request_children: dict = {}
        self.shared = SharedCounters(shared)
        registry.register(self.shared)
        self.file_bytes_total = Counter("baas_file_bytes", "File bytes uploaded (in) and downloaded (out).",
                                        ["direction"], registry=registry)
        self.restarts = _RestartsCollector(database_restarts) if database_restarts is not None else None
        if self.restarts is not None:
            registry.register(self.restarts)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # labels() validates, locks and builds a key on every call; a server answers a few dozen distinct
        # (method, route, status) triples, so their children are looked up once and kept.
        children = self._request_children.get((method, route, status))
        if children is None:
            children = self._request_children[(method, route, status)] = (
                self.requests.labels(method, route, str(status)).inc, self.latency.labels(method, route).observe)
        count, observe = children
        count()
        observe(seconds)

    def push_delivery(self, outcome: str) -> None:
        self.shared.add("push_deliveries", _known(outcome, PUSH_OUTCOMES))

    def job_run(self, outcome: str) -> None:
        self.shared.add("job_runs", _known(outcome, JOB_OUTCOMES))

    def file_bytes(self, direction: str, count: int) -> None:
        if count > 0:
            self.file_bytes_total.labels(_known(direction, FILE_DIRECTIONS)).inc(count)

    def render(self) -> bytes:
        """The Prometheus text exposition of the whole server (all worker processes in multiprocess mode)."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        self.shared.flush()  # this process's own counts first, so a scrape right after an event shows it
        if self.multiprocess_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
            registry.register(self.shared)
            if self.restarts is not None:
                registry.register(self.restarts)
            return generate_latest(registry)
        return generate_latest(self.registry)


class SharedCounters:
    """Counters summed in MongoDB across every process; a prometheus collector of the totals.

    Counts wait in memory until `flush()` adds them with one `$inc` per family, so a worker delivering thousands
    of pushes a second writes a few documents every couple of seconds. A flush that fails keeps its counts for
    the next one: nothing counted is lost while MongoDB is away (a process killed with -9 loses its last
    seconds of counts, which Prometheus' rate() tolerates).
    """

    def __init__(self, collection):
        self.collection = collection
        self._pending: Tally = Tally()
        self._lock = threading.Lock()

    def add(self, family: str, label: str, amount: int = 1) -> None:
        with self._lock:
            self._pending[(family, label)] += amount

    def flush(self) -> None:
        if self.collection is None:
            return
        with self._lock:
            pending, self._pending = self._pending, Tally()
        by_family: dict = {}
        for (family, label), amount in pending.items():
            by_family.setdefault(family, {})[label] = amount
        for family, increments in by_family.items():
            try:
                self.collection.update_one({"_id": family}, {"$inc": increments}, upsert=True)
            except Exception as exc:  # MongoDB away: keep the counts for the next flush
                log.warning("could not flush %s metrics (kept for the next flush): %s", family, exc)
                with self._lock:
                    for label, amount in increments.items():
                        self._pending[(family, label)] += amount

    def _totals(self) -> dict:
        if self.collection is None:
            with self._lock:
                local: dict = {}
                for (family, label), amount in self._pending.items():
                    local.setdefault(family, {})[label] = amount
                return local
        return {doc["_id"]: doc for doc in self.collection.find({"_id": {"$in": list(SHARED_FAMILIES)}})}

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        try:
            totals = self._totals()
        except Exception:  # the database being down must not break the scrape
            return
        for family, (name, description, label, values) in SHARED_FAMILIES.items():
            metric = CounterMetricFamily(name, description, labels=[label])
            stored = totals.get(family) or {}
            for value in values:
                if stored.get(value):  # outcomes that never happened are left out, as a labelled Counter does
                    metric.add_metric([value], int(stored[value]))
            yield metric


class MetricsFlush:
    """The background runner that flushes this process's shared counters (in `baas worker` and serve's
    background work); `finish()` flushes once more at shutdown."""

    name = "metrics"
    interval = FLUSH_SECONDS

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def run_once(self, now: float | None = None) -> None:
        self.metrics.shared.flush()

    def finish(self) -> None:
        self.metrics.shared.flush()


def background_runners(svc) -> list:
    return [MetricsFlush(svc.metrics)] if svc.metrics is not None else []


class _RestartsCollector:
    """The embedded database's restart count, read when scraped; left out while the database is away."""

    def __init__(self, read):
        self.read = read

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        try:
            count = self.read()
        except Exception:  # the database being down must not break the scrape that would show it
            return
        family = CounterMetricFamily("baas_embedded_database_restarts", "Restarts of the embedded database "
                                     "after it stopped answering or died.")
        family.add_metric([], count)
        yield family


def _known(value: str, allowed: tuple) -> str:
    # Labels are a closed set: a free-form value would grow the series without bound.
    if value not in allowed:
        raise ValueError(f"unknown metric label {value!r}; expected one of {', '.join(allowed)}")
    return value
