"""Jobs: fired once per scheduled time across two real `baas worker` processes, lease takeover, history, admin API."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baas.jobs.service import JobRunner
from baas.storage.embedded import die_with_parent
from baas.testing import ADMIN_TOKEN, ApiClient, create_project, wait_until, with_overrides

HERE = Path(__file__).resolve().parent


def job_overrides(folder) -> dict:
    return {"plugins.modules": ["jobs_plugin"], "plugins.enabled": ["jobs_plugin"], "plugins.folders": [],
            "plugins.settings": {"jobs_plugin": {"folder": str(folder)}}, "jobs.lease_seconds": 2}


@pytest.fixture
def workers(base_config, tmp_path):
    started = []

    def start(name: str):
        config = with_overrides(base_config, job_overrides(tmp_path))
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAAS_")}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        log = open(tmp_path / f"{name}.log", "wb")
        process = subprocess.Popen([sys.executable, "-m", "baas", "worker", "--config", str(path)], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   preexec_fn=die_with_parent)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture
def jobs_app(make_app, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    return make_app(job_overrides(tmp_path))


def test_a_job_fires_once_per_scheduled_time_with_two_workers(jobs_app, workers, tmp_path):
    first, second = workers("a"), workers("b")
    runs = jobs_app.extensions["baas"].mongo.platform["job_runs"]
    wait_until(lambda: runs.count_documents({"job": "jobs_plugin.tick", "status": "ok"}) >= 5, timeout=60,
               message="five tick runs")
    first.send_signal(signal.SIGTERM)
    second.send_signal(signal.SIGTERM)
    first.wait(timeout=30)
    second.wait(timeout=30)
    fires = [r["fire_time"] for r in runs.find({"job": "jobs_plugin.tick", "trigger": "schedule"})]
    assert len(fires) == len(set(fires))
    ticks = [float(line.split()[0]) for line in (tmp_path / "ticks").read_text().splitlines()]
    done = runs.count_documents({"job": "jobs_plugin.tick", "status": "ok"})
    assert len(ticks) == done  # every execution is one run: no fire time ran twice
    ticks.sort()
    assert all(later - earlier > 0.5 for earlier, later in zip(ticks, ticks[1:]))


def test_a_killed_workers_run_is_taken_over_after_its_lease(jobs_app, workers, tmp_path):
    jobs = jobs_app.extensions["baas"].extra["jobs"]
    first = workers("a")
    [queued] = jobs.request_run("jobs_plugin.stubborn")
    wait_until(lambda: (tmp_path / "stubborn-started").exists(), timeout=60, message="the first attempt")
    assert (tmp_path / "stubborn-started").read_text() == str(first.pid)
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = workers("b")
    wait_until(lambda: (tmp_path / "stubborn-done").exists(), timeout=60, message="the takeover")
    assert (tmp_path / "stubborn-done").read_text() == str(second.pid)
    run = wait_until(lambda: next((r for r in jobs.history("jobs_plugin.stubborn") if r["status"] == "ok"), None),
                     timeout=10, message="the run recorded as ok")
    assert run["id"] == queued["id"] and run["attempts"] == 2 and f":{second.pid}:" in run["worker"]


def test_admin_api_lists_runs_and_records_failures(jobs_app):
    admin = ApiClient(jobs_app.test_client(), {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    listed = {j["name"]: j for j in admin.get("/admin/v1/jobs").get_json()}
    assert listed["jobs_plugin.tick"]["schedule"] == "every 1 seconds"
    queued = admin.post("/admin/v1/jobs/jobs_plugin.broken/runs", json={})
    assert queued.status_code == 202 and queued.get_json()[0]["status"] == "queued"
    assert admin.post("/admin/v1/jobs/nope/runs", json={}).status_code == 404
    runner = JobRunner(jobs_app.extensions["baas"].extra["jobs"], owner="test-runner")
    jobs = runner.jobs
    run = jobs.claim(time.time(), runner.owner)
    while run is not None and run["job"] != "jobs_plugin.broken":
        jobs.execute(run, runner.owner)
        run = jobs.claim(time.time(), runner.owner)
    jobs.execute(run, runner.owner)
    history = admin.get("/admin/v1/jobs/jobs_plugin.broken/runs").get_json()
    assert history[0]["status"] == "error" and "job failure is recorded" in history[0]["error"]
    assert history[0]["worker"] == "test-runner" and history[0]["duration"] >= 0


def test_per_project_jobs_run_for_projects_that_enabled_the_plugin(make_app, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    app = make_app({"plugins.modules": ["jobs_plugin"], "plugins.folders": [],
                    "plugins.settings": {"jobs_plugin": {"folder": str(tmp_path)}}})
    admin = ApiClient(app.test_client(), {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    enabled = create_project(admin, app.test_client())
    other = create_project(admin, app.test_client())
    assert admin.post(f"/admin/v1/projects/{enabled.id}/plugins/jobs_plugin").status_code == 201
    refused = admin.post("/admin/v1/jobs/jobs_plugin.per_project/runs", json={"project": other.id})
    assert refused.status_code == 400
    queued = admin.post("/admin/v1/jobs/jobs_plugin.per_project/runs", json={})
    assert [r["project_id"] for r in queued.get_json()] == [enabled.id]
    jobs = app.extensions["baas"].extra["jobs"]
    runner = JobRunner(jobs, owner="test-runner")
    while (run := jobs.claim(time.time(), runner.owner)) is not None:
        jobs.execute(run, runner.owner)
    marks = enabled.server.get("/v1/collections/job_marks/documents").get_json()["items"]
    assert [m["project"] for m in marks] == [enabled.id]
    assert other.server.get("/v1/collections/job_marks/documents").get_json()["items"] == []
