"""Project export and import through `baas serve` beside the floor of the same work done directly, in one run.

    .venv/bin/python benchmarks/transfer.py [--documents 5000] [--files 20] [--file-mb 5]

Starts nx-27017 and `baas serve` (files on local disk under its data folder), fills a project through the API,
then exports it to a file and imports the archive under a new id, timing both. The floor, measured in the same
run on the same database and disk: reading every document of the project with pymongo plus every file's bytes
(export), and inserting the same documents into a scratch database plus writing the same bytes (import). Prints
seconds, MB/s of archive, the server's CPU seconds for each step (utime+stime of its process tree from /proc, which
stays meaningful on a busy machine) and its peak RSS growth (VmHWM), which shows that neither step holds the
project in memory: it stays far below the archive's size.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baas.storage.embedded import EmbeddedMongo  # noqa: E402
from baas.testing import ADMIN_TOKEN, ServerProcess  # noqa: E402
from files import _reset_peak_rss, _rss_kib, _tree  # noqa: E402  (benchmarks/files.py: /proc of a process tree)

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    total = 0
    for proc in _tree(pid):
        fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


class Step:
    """Wall time, server CPU and server peak RSS growth of what runs inside the `with`."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        _reset_peak_rss(self.pid)
        self.rss = _rss_kib(self.pid, "VmRSS")
        self.cpu = _cpu_seconds(self.pid)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.server_cpu = _cpu_seconds(self.pid) - self.cpu
        self.peak_mb = (_rss_kib(self.pid, "VmHWM") - self.rss) / 1024


def _fill(url: str, documents: int, files: int, file_mb: int) -> str:
    requests.post(f"{url}/admin/v1/projects", json={"id": "bench"}, headers=ADMIN).raise_for_status()
    key = requests.post(f"{url}/admin/v1/projects/bench/keys", json={"kind": "server"}, headers=ADMIN).json()["key"]
    headers = {"X-API-Key": key}
    requests.put(f"{url}/admin/v1/projects/bench/collections/items", json={}, headers=ADMIN).raise_for_status()
    batch = [{"op": "create", "collection": "items",
              "document": {"n": n, "title": f"item {n}", "tags": ["a", "b"], "score": n * 0.5}} for n in range(100)]
    for _ in range(documents // 100):
        answer = requests.post(f"{url}/v1/batch", json={"operations": batch}, headers=headers)
        answer.raise_for_status()
        assert all(result["status"] == 201 for result in answer.json()["results"]), answer.text[:300]
    for n in range(files):
        requests.post(f"{url}/v1/files", params={"name": f"f{n}.bin"}, data=os.urandom(file_mb * 1024 * 1024),
                      headers={**headers, "Content-Type": "application/octet-stream"}).raise_for_status()
    return key


def _floor_export(mongo_uri: str, prefix: str, data_dir: Path) -> tuple[float, int]:
    from pymongo import MongoClient

    client = MongoClient(mongo_uri)
    start = time.perf_counter()
    db = client[f"{prefix}p_bench"]
    count = 0
    for name in db.list_collection_names():
        count += sum(1 for _ in db[name].find({}))
    read = 0
    for path in (data_dir / "files").rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    read += len(chunk)
    client.close()
    return time.perf_counter() - start, read


def _floor_import(mongo_uri: str, prefix: str, data_dir: Path, scratch: Path) -> float:
    from pymongo import MongoClient

    client = MongoClient(mongo_uri)
    source = client[f"{prefix}p_bench"]
    snapshot = {name: list(source[name].find({})) for name in source.list_collection_names()}
    start = time.perf_counter()
    target = client[f"{prefix}floor"]
    for name, docs in snapshot.items():
        for at in range(0, len(docs), 500):
            if docs[at:at + 500]:
                target[name].insert_many(docs[at:at + 500])
    for number, path in enumerate(p for p in (data_dir / "files").rglob("*") if p.is_file()):
        with open(path, "rb") as handle, open(scratch / f"copy-{number}", "wb") as out:
            while chunk := handle.read(1024 * 1024):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    seconds = time.perf_counter() - start
    client.drop_database(f"{prefix}floor")
    client.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--file-mb", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="baas-transfer-bench-"))
    mongo = EmbeddedMongo(work / "db").start()
    prefix = "bench_"
    data_dir = work / "data"
    config = {"data_dir": str(data_dir), "admin_token": ADMIN_TOKEN,
              "mongodb": {"uri": mongo.uri, "db_prefix": prefix},
              "files": {"sweep_interval_seconds": 0}, "rate_limits": {"enabled": False}}
    server = ServerProcess(config, work).start()
    try:
        _fill(server.url, args.documents, args.files, args.file_mb)
        archive = work / "bench.tar.gz"
        with Step(server.process.pid) as export:
            with requests.get(f"{server.url}/admin/v1/projects/bench/export", headers=ADMIN, stream=True) as got:
                got.raise_for_status()
                with open(archive, "wb") as out:
                    for chunk in got.iter_content(1024 * 1024):
                        out.write(chunk)
        size_mb = archive.stat().st_size / 1024 / 1024
        floor_export, read = _floor_export(mongo.uri, prefix, data_dir)
        with Step(server.process.pid) as imported:
            with open(archive, "rb") as body:
                answer = requests.post(f"{server.url}/admin/v1/projects/import?project_id=bench-copy", data=body,
                                       headers={**ADMIN, "Content-Type": "application/gzip"})
            answer.raise_for_status()
        scratch = work / "scratch"
        scratch.mkdir()
        floor_import = _floor_import(mongo.uri, prefix, data_dir, scratch)
        result = answer.json()
        print(f"project: {sum(result['collections'].values())} documents, {result['files']} files "
              f"({result['file_bytes'] / 1024 / 1024:.0f} MB); archive {size_mb:.1f} MB")
        print(f"{'step':<8} {'seconds':>8} {'MB/s':>7} {'floor s':>8} {'x floor':>8} {'server CPU s':>13} "
              f"{'peak RSS +MB':>13}")
        for name, step, floor in (("export", export, floor_export), ("import", imported, floor_import)):
            print(f"{name:<8} {step.seconds:>8.2f} {size_mb / step.seconds:>7.1f} {floor:>8.2f} "
                  f"{step.seconds / floor:>8.1f} {step.server_cpu:>13.2f} {step.peak_mb:>13.1f}")
        print(f"floor: the same documents read (export) or inserted (import) with pymongo, and the same {read / 1e6:.0f}"
              " MB read or written (fsync) on the same disk, in this run. Server CPU and RSS: `baas serve`'s "
              "process tree (the import also waits on the embedded database, a separate process).")
    finally:
        server.stop()
        mongo.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
