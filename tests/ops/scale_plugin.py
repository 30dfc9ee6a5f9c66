"""A job for tests/ops/test_scale_out.py: every run appends its worker's pid to the file in its settings."""
import os
from pathlib import Path

from baas.plugins import job


@job(seconds=2, per_project=False)
def beat(ctx):
    with open(Path(ctx.config["folder"]) / "beats", "a") as handle:
        handle.write(f"{os.getpid()}\n")
