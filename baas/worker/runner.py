"""Runs every feature's background runners, each on its own thread, until told to stop."""
from __future__ import annotations

import importlib
import logging
import threading
import time

log = logging.getLogger("baas.worker")

# Feature packages that may expose background_runners(svc); a package without it is skipped.
# baas.observability last: its runner flushes the counts the others made.
FEATURES = ("baas.files", "baas.push", "baas.jobs", "baas.observability")


def collect_runners(svc) -> list:
    runners = []
    for name in FEATURES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        factory = getattr(module, "background_runners", None)
        if factory is not None:
            runners.extend(factory(svc))
    return runners


def _loop(runner, stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            runner.run_once(time.time())
        except Exception:  # a failing runner is logged and tried again next interval; it never ends the worker
            log.exception("background runner %s failed", runner.name)
        stop.wait(max(0.0, runner.interval - (time.monotonic() - started)))


class BackgroundWork:
    """Threads running `runners` until `stop()`; used by `baas worker` and inside `baas serve`."""

    def __init__(self, runners: list):
        self.runners = runners
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "BackgroundWork":
        for runner in self.runners:
            thread = threading.Thread(target=_loop, args=(runner, self._stop), name=f"baas-{runner.name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def request_stop(self, *_signal_args) -> None:
        """Ask the runners to stop after their current round (safe from a signal handler)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for runner in self.runners:
            finish = getattr(runner, "finish", None)  # last words: e.g. flush counts made in the final round
            if finish is not None:
                try:
                    finish()
                except Exception:
                    log.exception("background runner %s failed to finish", runner.name)

    def wait(self) -> None:
        """Block until stop() is called (from a signal handler)."""
        while not self._stop.wait(1.0):
            pass
