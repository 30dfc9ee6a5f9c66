"""File storage: streaming, resumable (tus) and direct uploads, metadata with rules, downloads, thumbnails."""
from __future__ import annotations

import logging
import os
import secrets
import threading
import time

log = logging.getLogger("baas.files")

SWEEP_LEASE = "files.sweep"


def init_app(app, api) -> None:
    from baas.files import api as files_api
    from baas.files.service import FileService

    svc = app.extensions["baas"]
    files = FileService(svc.mongo, svc.blobs, svc.projects, svc.hooks, svc.config)
    svc.extra["files"] = files
    svc.projects.on_delete.append(files.forget_project)
    if svc.auth is not None:
        svc.auth.on_user_deleted.append(files.delete_user_files)
    api.register_blueprint(files_api.blp)
    api.register_blueprint(files_api.admin_blp)
    interval = svc.config["files"]["sweep_interval_seconds"]
    if interval:
        starter = _LazySweeper(files, interval)
        app.before_request(lambda: starter.start_once(app))


class SweepRunner:
    """The files sweep as a periodic job: `run_once(now)` sweeps when this process holds the lease."""

    name = SWEEP_LEASE

    def __init__(self, files, lease_seconds: float = 300):
        self.files = files
        self.lease_seconds = lease_seconds
        self.holder = f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(4)}"

    def run_once(self, now=None):
        if not self.files.take_lease(self.name, self.holder, self.lease_seconds):
            return None
        return self.files.sweep(now)


def background_runners(svc) -> list:
    """Periodic jobs of this feature, for a worker to run (each has .name and .run_once(now))."""
    return [SweepRunner(svc.extra["files"])]


class _LazySweeper:
    """Until baas/worker runs the sweep: a daemon thread, started by the first request a serving process takes
    (never at import or app creation, so tests and the CLI start none), sweeping every `interval` seconds when
    it holds the MongoDB lease, so one process sweeps at a time however many serve."""

    def __init__(self, files, interval: float):
        self.runner = SweepRunner(files, lease_seconds=max(interval * 3, 60))
        self.interval = interval
        self._started = False
        self._lock = threading.Lock()

    def start_once(self, app) -> None:
        if self._started or app.testing:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
            threading.Thread(target=self._loop, name="baas-files-sweep", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self.runner.run_once()
            except Exception:  # the database or storage being down must not end the thread
                log.exception("files sweep failed; retrying in %ss", self.interval)
