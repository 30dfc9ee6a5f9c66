"""File storage: streaming, resumable (tus) and direct uploads, metadata with rules, downloads, thumbnails.

Background work: the orphan sweep (SweepRunner, one process at a time by a lease) and the file tasks queue
(baas.files.tasks: hashing, deleting a deleted user's files)."""
from __future__ import annotations

SWEEP_LEASE = "files.sweep"


def init_app(app, api) -> None:
    from baas.files import api as files_api
    from baas.files.service import FileService

    svc = app.extensions["baas"]
    files = FileService(svc.mongo, svc.blobs, svc.projects, svc.hooks, svc.config, metrics=svc.metrics)
    svc.extra["files"] = files
    svc.projects.on_delete.append(files.forget_project)
    if svc.auth is not None:
        svc.auth.on_user_deleted.append(files.delete_user_files)
    api.register_blueprint(files_api.blp)
    api.register_blueprint(files_api.admin_blp)


class SweepRunner:
    """The files sweep as background work (baas.worker): it sweeps when this process holds the lease, so one
    process sweeps at a time however many run."""

    name = SWEEP_LEASE

    def __init__(self, files, leases, interval: float):
        from baas.worker.lease import worker_id

        self.files = files
        self.leases = leases
        self.interval = interval
        self.lease_seconds = max(interval * 3, 60)
        self.holder = worker_id()

    def run_once(self, now: float | None = None):
        from datetime import datetime, timezone

        if not self.leases.acquire(self.name, self.holder, self.lease_seconds, now=now):
            return None
        return self.files.sweep(datetime.fromtimestamp(now, timezone.utc) if now is not None else None)


def background_runners(svc) -> list:
    from baas.files.tasks import FileTaskRunner
    from baas.worker.lease import Leases

    files = svc.extra.get("files")
    if files is None:
        return []
    config = svc.config["files"]
    runners = [FileTaskRunner(files, config["task_poll_seconds"])]
    if config["sweep_interval_seconds"]:
        runners.append(SweepRunner(files, Leases(svc.mongo.platform["leases"]), config["sweep_interval_seconds"]))
    return runners
