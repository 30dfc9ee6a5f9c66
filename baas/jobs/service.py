"""Job scheduling through MongoDB, so every worker process agrees on what runs where.

- `job_schedules` holds, per (job, project), the next fire time. The first worker to see it due inserts the run
  document whose `_id` is (job, project, fire time): a unique `_id` insert succeeds once on every backend, so each
  scheduled fire runs once however many workers race for it; the others get a duplicate key and move on.
- A run document carries a lease (`lease_owner`, `lease_until`) that its worker renews while the job runs. A run
  whose worker died keeps status `running` with an expiring lease; `claim_one` hands it to another worker, which
  runs it again (jobs should be idempotent: a crash may have come after part of the work).
- Manual runs (`baas jobs run`) are queued run documents any worker claims the same way.
Times are epoch seconds (floats): they compare the same on every backend.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from datetime import datetime, timezone

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from baas.errors import Invalid, NotFound
from baas.plugins.context import PluginContext
from baas.storage.mongo import ensure_index
from baas.worker.lease import claim_one, owned, worker_id

log = logging.getLogger("baas.jobs")

PLATFORM = "*"  # the project field of jobs that run once for the platform (per_project=False)
MAX_ATTEMPTS = 3


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class JobService:
    def __init__(self, svc):
        self.svc = svc
        self.hooks = svc.hooks
        self.runs = svc.mongo.platform["job_runs"]
        self.schedules = svc.mongo.platform["job_schedules"]
        self.lease_seconds = svc.config["jobs"]["lease_seconds"]
        self.history_seconds = svc.config["jobs"]["history_days"] * 86400

    def ensure_indexes(self) -> None:
        ensure_index(self.runs, [("job", ASCENDING), ("started", DESCENDING)], name="job_started")
        ensure_index(self.runs, [("status", ASCENDING)], name="status")

    # ---- admin

    def list(self) -> list[dict]:
        now = datetime.now(timezone.utc)
        described = []
        for spec in sorted(self.hooks.jobs().values(), key=lambda j: j.name):
            next_fire = spec.trigger().get_next_fire_time(None, now)
            described.append({"name": spec.name, "plugin": spec.plugin, "schedule": spec.schedule,
                              "per_project": spec.per_project, "description": spec.description,
                              "next_fire": _epoch(next_fire)})
        return described

    def _spec(self, name: str):
        spec = self.hooks.jobs().get(name)
        if spec is None:
            raise NotFound(f"No job '{name}'; GET /admin/v1/jobs lists them.")
        return spec

    def projects_for(self, spec) -> list[str]:
        if not spec.per_project:
            return [PLATFORM]
        if spec.plugin in self.hooks.active_for(None):  # enabled globally: every active project
            return [p["_id"] for p in self.svc.projects.list()]
        return self.hooks.enablements.projects_with(spec.plugin)

    def history(self, name: str, project_id: str | None = None, limit: int = 20) -> list[dict]:
        self._spec(name)
        query: dict = {"job": name}
        if project_id:
            query["project_id"] = project_id
        return [_public(r) for r in self.runs.find(query).sort("created", DESCENDING).limit(limit)]

    def request_run(self, name: str, project_id: str | None = None) -> list[dict]:
        """Queue a run now (for one project, or every project that enabled the job's plugin); workers run it."""
        spec = self._spec(name)
        targets = self.projects_for(spec)
        if project_id is not None:
            if not spec.per_project:
                raise Invalid(f"Job '{name}' runs for the whole platform; leave out the project.")
            self.svc.projects.info(project_id)
            if project_id not in targets:
                raise Invalid(f"Job '{name}' does not run in project '{project_id}': its plugin "
                              f"'{spec.plugin}' is not enabled there.", errors={"project": ["Plugin not enabled."]})
            targets = [project_id]
        now = time.time()
        queued = []
        for target in targets:
            run = {"_id": f"{name}|{target}|manual-{now:.6f}", "job": name, "project_id": target,
                   "trigger": "manual", "fire_time": now, "status": "queued", "created": now, "attempts": 0}
            self.runs.insert_one(run)
            queued.append(_public(run))
        return queued

    # ---- workers

    def fire_due(self, now: float, owner: str) -> list[dict]:
        """Insert the run documents of every due scheduled fire that no other worker inserted first."""
        fired = []
        when = datetime.fromtimestamp(now, timezone.utc)
        for spec in self.hooks.jobs().values():
            trigger = spec.trigger()
            for project_id in self.projects_for(spec):
                key = f"{spec.name}|{project_id}"
                schedule = self.schedules.find_one({"_id": key})
                if schedule is None:
                    first = _epoch(trigger.get_next_fire_time(None, when))
                    try:
                        self.schedules.insert_one({"_id": key, "next_fire": first})
                    except DuplicateKeyError:
                        pass
                    continue
                due = schedule["next_fire"]
                if due is None or due > now:
                    continue
                following = _epoch(trigger.get_next_fire_time(None, when))
                if following is not None and following <= now:
                    following = _epoch(trigger.get_next_fire_time(when, when))
                # Missed fires while no worker ran are coalesced into this one.
                self.schedules.update_one({"_id": key, "next_fire": due}, {"$set": {"next_fire": following}})
                run = {"_id": f"{key}|{due:.3f}", "job": spec.name, "project_id": project_id,
                       "trigger": "schedule", "fire_time": due, "status": "running", "created": now,
                       "attempts": 1, "started": now, "worker": owner, "lease_owner": owner,
                       "lease_until": now + self.lease_seconds}
                try:
                    self.runs.insert_one(run)
                except DuplicateKeyError:  # another worker fired it
                    continue
                fired.append(run)
        return fired

    def claim(self, now: float, owner: str) -> dict | None:
        """A queued manual run, or a run whose worker stopped renewing its lease."""
        run = claim_one(self.runs, {"status": {"$in": ["queued", "running"]}, "attempts": {"$lt": MAX_ATTEMPTS}},
                        owner, self.lease_seconds, now)
        if run is None:
            return None
        self.runs.update_one(owned(run["_id"], owner), {"$set": {"status": "running", "started": now,
                                                                 "worker": owner},
                                                        "$inc": {"attempts": 1}})
        run.update(status="running", started=now, worker=owner, attempts=run.get("attempts", 0) + 1)
        return run

    def execute(self, run: dict, owner: str) -> dict:
        """Run one claimed run to its end, renewing its lease meanwhile; record the outcome."""
        spec = self.hooks.jobs().get(run["job"])
        done = threading.Event()

        def renew():
            while not done.wait(self.lease_seconds / 3):
                self.runs.update_one(owned(run["_id"], owner), {"$set": {"lease_until": time.time() +
                                                                         self.lease_seconds}})

        renewer = threading.Thread(target=renew, name=f"baas-job-lease-{run['job']}", daemon=True)
        renewer.start()
        started = time.time()
        outcome, error = "ok", None
        try:
            if spec is None:
                raise RuntimeError(f"job {run['job']} is no longer registered")
            project_id = None if run["project_id"] == PLATFORM else run["project_id"]
            spec.handler(PluginContext(self.svc, spec.plugin, project_id))
        except Exception as exc:  # jobs are isolated: logged with the plugin's name, recorded in the history
            outcome, error = "error", f"{type(exc).__name__}: {exc}"
            log.error("plugin %s failed in job %s (project %s): %s", spec.plugin if spec else "?", run["job"],
                      run["project_id"], traceback.format_exc())
        finally:
            done.set()
        finished = time.time()
        result = {"status": outcome, "finished": finished, "duration": round(finished - started, 3),
                  "error": error, "lease_until": 0.0}
        self.runs.update_one(owned(run["_id"], owner), {"$set": result})
        if self.svc.metrics is not None:
            self.svc.metrics.job_run("succeeded" if outcome == "ok" else "failed")
        run.update(result)
        return run

    def prune(self, now: float) -> None:
        self.runs.delete_many({"status": {"$in": ["ok", "error"]}, "finished": {"$lt": now - self.history_seconds}})
        for spec in self.hooks.jobs().values():
            if spec.frequent:
                # A job every few seconds would fill the history with successes: keep an hour of those.
                self.runs.delete_many({"job": spec.name, "status": "ok", "finished": {"$lt": now - 3600}})


class JobRunner:
    """The background runner `baas worker` (and `baas serve` on the embedded default) runs."""
    name = "jobs"
    interval = 1.0

    def __init__(self, jobs: JobService, owner: str | None = None):
        self.jobs = jobs
        self.owner = owner or worker_id()
        self._last_prune = 0.0

    def run_once(self, now: float) -> int:
        count = 0
        for run in self.jobs.fire_due(now, self.owner):
            self.jobs.execute(run, self.owner)
            count += 1
        while (run := self.jobs.claim(time.time(), self.owner)) is not None:
            self.jobs.execute(run, self.owner)
            count += 1
        if now - self._last_prune > 300:
            self._last_prune = now
            self.jobs.prune(now)
        return count


def _public(run: dict) -> dict:
    return {"id": run["_id"], "job": run["job"], "project_id": None if run["project_id"] == PLATFORM
            else run["project_id"], "trigger": run.get("trigger"), "fire_time": run.get("fire_time"),
            "status": run.get("status"), "started": run.get("started"), "finished": run.get("finished"),
            "duration": run.get("duration"), "error": run.get("error"), "worker": run.get("worker"),
            "attempts": run.get("attempts", 0)}
