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
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds; API requests are mostly a few milliseconds, the top buckets catch slow queries and uploads.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PUSH_OUTCOMES = ("delivered", "expired", "rejected", "retried", "failed", "unconfirmed")
JOB_OUTCOMES = ("succeeded", "failed", "timed_out", "skipped")
FILE_DIRECTIONS = ("in", "out")


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

    def __init__(self, database_restarts=None):
        """`database_restarts`: a callable giving how often the embedded database was restarted (None: no
        embedded database, no such metric)."""
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV)
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter("baas_http_requests", "HTTP requests answered, by route template and status.",
                                ["method", "route", "status"], registry=registry)
        self.latency = Histogram("baas_http_request_duration_seconds", "Time to answer HTTP requests.",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.push_deliveries = Counter("baas_push_deliveries", "Push notifications handed to push services, by "
                                       "outcome.", ["outcome"], registry=registry)
        self.job_runs = Counter("baas_job_runs", "Background job runs, by outcome.", ["outcome"], registry=registry)
        self.file_bytes_total = Counter("baas_file_bytes", "File bytes uploaded (in) and downloaded (out).",
                                        ["direction"], registry=registry)
        self.restarts = _RestartsCollector(database_restarts) if database_restarts is not None else None
        if self.restarts is not None:
            registry.register(self.restarts)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def push_delivery(self, outcome: str) -> None:
        self.push_deliveries.labels(_known(outcome, PUSH_OUTCOMES)).inc()

    def job_run(self, outcome: str) -> None:
        self.job_runs.labels(_known(outcome, JOB_OUTCOMES)).inc()

    def file_bytes(self, direction: str, count: int) -> None:
        if count > 0:
            self.file_bytes_total.labels(_known(direction, FILE_DIRECTIONS)).inc(count)

    def render(self) -> bytes:
        """The Prometheus text exposition of the whole server (all worker processes in multiprocess mode)."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if self.multiprocess_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
            if self.restarts is not None:
                registry.register(self.restarts)
            return generate_latest(registry)
        return generate_latest(self.registry)


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
