"""Jobs for tests/plugins/test_jobs.py; they report to files under the folder in plugins.settings.jobs_plugin."""
import os
import time
from pathlib import Path

from baas.plugins import job


@job(seconds=1, per_project=False)
def tick(ctx):
    with open(Path(ctx.config["folder"]) / "ticks", "a") as handle:
        handle.write(f"{time.time()} {os.getpid()}\n")


@job(hours=24, per_project=False)
def stubborn(ctx):
    """Hangs on its first attempt (until the worker is killed), finishes on the next."""
    marker = Path(ctx.config["folder"]) / "stubborn-started"
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(600)  # the hang under test: the test kills this worker
    (Path(ctx.config["folder"]) / "stubborn-done").write_text(str(os.getpid()))


@job(hours=24)
def per_project(ctx):
    ctx.documents.create("job_marks", {"project": ctx.project_id})


@job(hours=24, per_project=False)
def broken(ctx):
    raise RuntimeError("job failure is recorded")
