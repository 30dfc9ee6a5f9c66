"""Where the server's CPU goes on a 1 MB upload: cProfile over the WSGI app (no HTTP server), raw and form bodies.

Starts nx-27017 and a moto S3 server (or uses BAAS_TEST_S3_ENDPOINT), builds the app as `baas serve` does, then
uploads through Flask's test client in a loop and prints the top functions, the MongoDB commands per upload
(pymongo's command monitoring) and the app's CPU per upload beside one direct minio-SDK PUT measured the same way.

    .venv/bin/python benchmarks/profile_files.py [--kind raw|form] [--uploads 100] [--size-kib 1024] [--top 25]
                                                 [--sort tottime|cumulative] [--timer wall|cpu]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pymongo import monitoring  # noqa: E402

from baas.storage.embedded import EmbeddedMongo  # noqa: E402
from baas.testing import ADMIN_TOKEN  # noqa: E402
from files import s3_server  # noqa: E402


class _Commands(monitoring.CommandListener):
    def __init__(self):
        self.counts = Counter()

    def started(self, event):
        self.counts[event.command_name] += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("raw", "form"), default="raw")
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--size-kib", type=int, default=1024)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", help="pstats order: tottime, cumulative, ...")
    parser.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                        help="cpu: the request thread's CPU time (time.thread_time), so waits on S3 and MongoDB "
                             "drop out and what is left is what this process spends")
    args = parser.parse_args()
    commands = _Commands()
    monitoring.register(commands)
    work = Path(tempfile.mkdtemp(prefix="baas-files-profile-"))
    mongo = EmbeddedMongo(work / "db").start()
    endpoint, access, secret, moto = s3_server()
    bucket = "profile-" + secrets.token_hex(4)
    try:
        from baas import create_app

        app = create_app({"data_dir": str(work / "data"), "admin_token": ADMIN_TOKEN, "mongodb": {"uri": mongo.uri},
                          "storage": {"s3": {"endpoint": endpoint, "access_key": access, "secret_key": secret,
                                             "secure": False, "bucket": bucket}},
                          "files": {"sweep_interval_seconds": 0}, "rate_limits": {"enabled": False},
                          "logging": {"access": False}})
        client = app.test_client()
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert client.post("/admin/v1/projects", json={"id": "prof"}, headers=admin).status_code == 201
        key = client.post("/admin/v1/projects/prof/keys", json={"kind": "server"}, headers=admin).get_json()["key"]
        data = os.urandom(args.size_kib * 1024)

        def one_upload():
            if args.kind == "raw":
                response = client.post("/v1/files", data=data, headers={"X-API-Key": key},
                                       content_type="application/octet-stream", query_string={"name": "f.bin"})
            else:
                response = client.post("/v1/files", data={"file": (io.BytesIO(data), "f.bin")},
                                       headers={"X-API-Key": key}, content_type="multipart/form-data")
            assert response.status_code == 201, response.get_json()

        for _ in range(5):
            one_upload()  # warm-up: imports, the bucket check, connection pools
        commands.counts.clear()
        profiler = cProfile.Profile(time.thread_time) if args.timer == "cpu" else cProfile.Profile()
        cpu = time.process_time()
        wall = time.perf_counter()
        profiler.enable()
        for _ in range(args.uploads):
            one_upload()
        profiler.disable()
        cpu_per_upload = (time.process_time() - cpu) / args.uploads * 1000
        wall_per_upload = (time.perf_counter() - wall) / args.uploads * 1000
        from minio import Minio

        direct = Minio(endpoint, access_key=access, secret_key=secret, secure=False)
        direct.put_object(bucket, "direct/warm", io.BytesIO(data), len(data))
        cpu = time.process_time()
        wall = time.perf_counter()
        for n in range(args.uploads):
            direct.put_object(bucket, f"direct/{n}", io.BytesIO(data), len(data))
        direct_cpu = (time.process_time() - cpu) / args.uploads * 1000
        direct_wall = (time.perf_counter() - wall) / args.uploads * 1000
        stats = pstats.Stats(profiler)
        stats.sort_stats(args.sort).print_stats(args.top)
        print(f"{args.kind} {args.size_kib} KiB x {args.uploads}: API in-process {wall_per_upload:.1f} ms wall, "
              f"{cpu_per_upload:.1f} ms CPU per upload; direct minio PUT {direct_wall:.1f} ms wall, "
              f"{direct_cpu:.1f} ms CPU (client side only; moto's CPU is in its own process)")
        print("MongoDB commands per upload:",
              {name: round(count / args.uploads, 2) for name, count in commands.counts.most_common()})
    finally:
        if moto:
            moto.terminate()
        mongo.stop()
        shutil.rmtree(work, ignore_errors=True)  # databases and logs of one run


if __name__ == "__main__":
    main()
