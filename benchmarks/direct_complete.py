"""What completing a direct (presigned) upload costs now that it copies the staging object on the storage side.

    .venv/bin/python benchmarks/direct_complete.py [--sizes 1,100] [--runs 3]   (MB; moto keeps objects in RAM)

Starts nx-27017, a moto S3 server (or uses BAAS_TEST_S3_ENDPOINT) and `baas serve`. For each size: PUT to the
presigned URL, then time `POST /v1/files/uploads/{id}/complete`; beside it, in the same run, the same
server-side copy made directly with the minio SDK (`copy_object`) and a bare `stat_object` (what completion cost
before it copied). Prints medians, the API server's CPU per completion and the S3 server's CPU per completion
(user + system from /proc; the copy is the storage's work, so it shows there, not in baas).
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from files import _body, _cpu_seconds, _GenReader, bench_stack  # noqa: E402


def _median(values):
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,100")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) * 1024 * 1024 for s in args.sizes.split(",")]
    with bench_stack(max(sizes) + 1) as (server, key, direct, bucket, moto):
        api = {"X-API-Key": key}
        from minio.commonconfig import CopySource

        print(f"{'size':>8} {'complete ms':>12} {'SDK copy ms':>12} {'SDK stat ms':>12} "
              f"{'baas CPU ms':>12} {'S3 CPU ms':>10}")
        for size in sizes:
            completes, copies, stats, baas_cpu, s3_cpu = [], [], [], [], []
            for _ in range(args.runs + 1):  # the first run warms up and is not counted
                started = requests.post(f"{server.url}/v1/files/uploads", json={"name": "b.bin"},
                                        headers=api).json()
                requests.put(started["url"], data=_body(size), headers=started["headers"]).raise_for_status()
                cpu = _cpu_seconds(server.process.pid), _cpu_seconds(moto.pid) if moto else 0.0
                start = time.perf_counter()
                done = requests.post(f"{server.url}/v1/files/uploads/{started['id']}/complete", headers=api)
                completes.append((time.perf_counter() - start) * 1000)
                baas_cpu.append((_cpu_seconds(server.process.pid) - cpu[0]) * 1000)
                s3_cpu.append(((_cpu_seconds(moto.pid) if moto else 0.0) - cpu[1]) * 1000)
                done.raise_for_status()
                requests.delete(f"{server.url}/v1/files/{done.json()['_id']}", headers=api)
                direct.put_object(bucket, "direct/src", io.BufferedReader(_GenReader(_body(size))), -1,
                                  part_size=10 * 1024 * 1024)
                start = time.perf_counter()
                direct.copy_object(bucket, "direct/dst", CopySource(bucket, "direct/src"))
                copies.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                direct.stat_object(bucket, "direct/dst")
                stats.append((time.perf_counter() - start) * 1000)
                direct.remove_object(bucket, "direct/src")
                direct.remove_object(bucket, "direct/dst")
            print(f"{size / 1024 / 1024:>6.0f}MB {_median(completes[1:]):>12.1f} {_median(copies[1:]):>12.1f} "
                  f"{_median(stats[1:]):>12.1f} {_median(baas_cpu[1:]):>12.1f} {_median(s3_cpu[1:]):>10.1f}")
        print(f"medians of {args.runs} runs after a warm-up; CPU from /proc of each server's process tree "
              "(10 ms ticks)")


if __name__ == "__main__":
    main()
