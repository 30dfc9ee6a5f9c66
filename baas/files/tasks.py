"""Background work of file storage, queued in MongoDB (platform collection `file_tasks`) and run by `baas worker`
(or by `baas serve` on the embedded default), so no request waits for it:

- `hash`: the sha256 of a file whose bytes the server did not see as they arrived (a presigned PUT, a tus upload
  whose chunks reached several processes). The file is readable at once with `sha256: null` and
  `sha256_state: "pending"` until this is done.
- `user_files`: the files of a deleted user, when the project's `delete_with_user` setting says so.

Any number of processes run the runner: each task is claimed with a lease (`baas.worker.lease.claim_one`) that its
worker renews while working, so two workers never work on one task at a time, and the task of a worker that was
killed is taken over by another once its lease runs out. A task leaves the queue only once its work is done.
"""
from __future__ import annotations

import logging
import time

from pymongo import ASCENDING

from baas.worker.lease import claim_one, owned, worker_id

log = logging.getLogger("baas.files")

LEASE_SECONDS = 60.0       # a worker silent this long is taken to be dead; its task goes to another
ROUND_SECONDS = 5.0        # one run_once works at most this long, so the runner notices a stop
MAX_BACKOFF_SECONDS = 600.0


class FileTaskRunner:
    """The background runner of file tasks (see baas.worker): `run_once(now)` works off what is due."""

    name = "files.tasks"

    def __init__(self, files, interval: float, owner: str | None = None, lease_seconds: float = LEASE_SECONDS):
        self.files = files
        self.queue = files.tasks
        self.interval = interval
        self.owner = owner or worker_id()
        self.lease_seconds = lease_seconds

    def run_once(self, now: float | None = None) -> int:
        """Work off due tasks for up to ROUND_SECONDS; returns how many were finished."""
        started = time.monotonic()
        finished = 0
        while time.monotonic() - started < ROUND_SECONDS:
            clock = now if now is not None else time.time()
            task = claim_one(self.queue, {"due_ts": {"$lte": clock}}, self.owner, self.lease_seconds, now=clock,
                             sort=[("due_ts", ASCENDING)])
            if task is None:
                break
            try:
                done = self._work(task, started)
            except Exception as exc:
                self._retry_later(task, exc)
                continue
            if done:
                self.queue.delete_one(owned(task["_id"], self.owner))
                finished += 1
            else:
                self._release(task, delay=max(self.interval, 1.0))
        return finished

    def _renew(self, task_id: str) -> bool:
        """Extend this worker's lease on a task; False when it was lost (another worker took it over)."""
        return self.queue.update_one(owned(task_id, self.owner),
                                     {"$set": {"lease_until": time.time() + self.lease_seconds}}).matched_count == 1

    def _release(self, task: dict, delay: float, **changes) -> None:
        self.queue.update_one(owned(task["_id"], self.owner),
                              {"$set": {"lease_until": 0.0, "due_ts": time.time() + delay, **changes}})

    def _retry_later(self, task: dict, exc: Exception) -> None:
        attempts = int(task.get("attempts", 0)) + 1
        delay = min(MAX_BACKOFF_SECONDS, 2.0 ** attempts)
        log.warning("file task %s failed (attempt %d), retried in %.0f s: %s", task["_id"], attempts, delay, exc)
        self._release(task, delay, attempts=attempts)

    def _work(self, task: dict, started: float) -> bool:
        kind = task["kind"]
        if kind == "hash":
            return self.files.hash_file(task["project_id"], task["file_id"],
                                        still_mine=lambda: self._renew(task["_id"]))
        if kind == "user_files":
            # Page by page, renewing the lease between pages; a long list resumes in the next round.
            while self.files.remove_owned_files(task["project_id"], task["user_id"]):
                if not self._renew(task["_id"]):
                    return False
                if time.monotonic() - started > ROUND_SECONDS:
                    return False
            return True
        log.error("unknown file task kind %r (%s); dropped", kind, task["_id"])
        return True

    def drain(self, timeout: float = 30.0) -> None:
        """Run rounds until nothing is due (for tests and the CLI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run_once() and self.queue.find_one({"due_ts": {"$lte": time.time()}}) is None:
                return
        raise TimeoutError("file tasks still due after the timeout")
