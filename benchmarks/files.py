"""File throughput through the API beside the same transfer done directly with the minio SDK, in one run.

    .venv/bin/python benchmarks/files.py [--sizes 1,100,1024]   (MB; moto keeps objects in RAM, each is deleted
                                                                 after its row: 1 GB needs ~3 GB free)

Starts nx-27017, a moto S3 server (or uses BAAS_TEST_S3_ENDPOINT) and `baas serve`; after a warm-up upload, prints
MB/s for upload and download of each size through the API and directly, the server's peak RSS growth during that
size (VmHWM of its processes, reset per size), and CPU per upload from /proc (user + system time, a mean over the
runs): the server's, the database's (nx-27017), the S3 server's for an API upload and for a direct one, and the
direct client's own.

Each repetition does one API upload and one direct upload back to back, alternating which goes first, and the
figures are medians over the repetitions (21 up to 10 MB), so that a machine shared with other work slows both
paths alike and the API / direct ratio stays meaningful. The direct client is a minio client like the server's
(connection reuse, the same Content-Type). Up to 10 MB both know the length (the API gets a Content-Length, the
direct client a length), as an app uploading a file does; above, both stream a body of unknown length (chunked to
the API, minio's unknown-length multipart directly), so that neither client holds the file in memory.

    .venv/bin/python benchmarks/files.py --storage local [--sizes 1,100,1024]

measures the embedded default's local adapter instead (no S3 server): "direct" is then this process writing the
same bytes to a file on the same disk (temp file + rename, as the adapter does) and reading them back, in 1 MiB
blocks.
"""
from __future__ import annotations

import argparse
import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baas.storage.embedded import EmbeddedMongo, free_port  # noqa: E402
from baas.testing import ADMIN_TOKEN, ServerProcess, wait_until  # noqa: E402

CHUNK = 1024 * 1024


def _tree(pid: int) -> list:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that ended meanwhile (moto runs one per request)
            continue
        for child in children:
            out += _tree(int(child))
    return out + [pid]


def _rss_kib(pid: int, field: str) -> int:
    total = 0
    for proc in _tree(pid):
        for line in Path(f"/proc/{proc}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                total += int(line.split()[1])
    return total


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the server's process tree so far (from /proc: stays meaningful on a busy machine)."""
    total = 0
    for proc in _tree(pid):
        fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


_BLOCK = os.urandom(CHUNK)  # made once: os.urandom of 1 MiB takes ~4 ms here, which no upload should be timed with


def _body(size: int):
    block = _BLOCK
    sent = 0
    while sent < size:
        piece = block[:min(CHUNK, size - sent)]
        sent += len(piece)
        yield piece


def s3_server() -> tuple:
    """(endpoint, access key, secret key, the moto process or None): BAAS_TEST_S3_ENDPOINT, else moto started here."""
    endpoint = os.environ.get("BAAS_TEST_S3_ENDPOINT")
    access, secret = os.environ.get("BAAS_TEST_S3_ACCESS_KEY", "test"), os.environ.get("BAAS_TEST_S3_SECRET_KEY", "test")
    if endpoint:
        return endpoint, access, secret, None
    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"127.0.0.1:{port}"
    wait_until(lambda: _up(f"http://{endpoint}/"), timeout=30, message="moto")
    return endpoint, access, secret, moto


class S3Direct:
    """The direct transfers beside the API's: a minio client of the same S3 server, as an app using the SDK."""

    def __init__(self, endpoint: str, access: str, secret: str, bucket: str):
        from minio import Minio

        self.client, self.bucket = Minio(endpoint, access_key=access, secret_key=secret, secure=False), bucket

    def put(self, name: str, stream, size: int, content_type: str) -> None:
        self.client.put_object(self.bucket, f"direct/{name}", stream, size, part_size=10 * 1024 * 1024,
                               content_type=content_type)

    def read(self, name: str) -> None:
        response = self.client.get_object(self.bucket, f"direct/{name}")
        for _ in response.stream(CHUNK):
            pass
        response.close()
        response.release_conn()

    def remove(self, name: str) -> None:
        self.client.remove_object(self.bucket, f"direct/{name}")


class DiskDirect:
    """The direct transfers for the local adapter: this process writing the bytes to a file on the same disk
    (temp file + rename, as the adapter does) and reading them back, 1 MiB at a time."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True)

    def put(self, name: str, stream, size: int, content_type: str) -> None:
        target = self.folder / name
        partial = target.with_suffix(".partial")
        with open(partial, "wb") as out:
            out.writelines(iter(lambda: stream.read(CHUNK), b""))
        os.replace(partial, target)

    def read(self, name: str) -> None:
        with open(self.folder / name, "rb") as source:
            for _ in iter(lambda: source.read(CHUNK), b""):
                pass

    def remove(self, name: str) -> None:
        (self.folder / name).unlink()


@contextmanager
def bench_stack(max_file_bytes: int, storage: str = "s3"):
    """nx-27017, an S3 server (moto unless BAAS_TEST_S3_ENDPOINT; none for `local`) and `baas serve` with a project
    `bench`; yields (the server, its server key, the direct transfers, the moto process or None, the database)."""
    work = Path(tempfile.mkdtemp(prefix="baas-files-bench-"))
    mongo = EmbeddedMongo(work / "db").start()
    config = {"data_dir": str(work / "data"), "admin_token": ADMIN_TOKEN, "mongodb": {"uri": mongo.uri},
              "files": {"max_file_bytes": max_file_bytes, "sweep_interval_seconds": 0},
              "rate_limits": {"enabled": False}}
    moto = None
    if storage == "local":
        direct = DiskDirect(work / "direct")
    else:
        endpoint, access, secret, moto = s3_server()
        bucket = "bench-" + secrets.token_hex(4)
        config["storage"] = {"s3": {"endpoint": endpoint, "access_key": access, "secret_key": secret,
                                    "secure": False, "bucket": bucket}}
        direct = S3Direct(endpoint, access, secret, bucket)
    server = ServerProcess(config, work).start()
    try:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        requests.post(f"{server.url}/admin/v1/projects", json={"id": "bench"}, headers=admin).raise_for_status()
        key = requests.post(f"{server.url}/admin/v1/projects/bench/keys", json={"kind": "server"},
                            headers=admin).json()["key"]
        yield server, key, direct, moto, mongo
    finally:
        server.stop()
        if moto:
            moto.terminate()
        mongo.stop()
        shutil.rmtree(work, ignore_errors=True)  # databases and logs of one run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,100")
    parser.add_argument("--storage", choices=("s3", "local"), default="s3",
                        help="the S3 adapter against moto (or BAAS_TEST_S3_ENDPOINT), or the local adapter")
    args = parser.parse_args()
    sizes = [int(s) * 1024 * 1024 for s in args.sizes.split(",")]
    with bench_stack(max(sizes) + 1, args.storage) as (server, key, direct, moto, mongo):
        pids = {"server": server.process.pid, "s3": moto.pid if moto else None, "db": mongo.process.pid}
        headers = {"X-API-Key": key, "Content-Type": "application/octet-stream"}
        # Warm-up, not measured: the first request's imports, the bucket check and both connection pools.
        requests.post(f"{server.url}/v1/files", data=_body(CHUNK), headers=headers).raise_for_status()
        direct.put("warm-up", io.BytesIO(os.urandom(CHUNK)), CHUNK, headers["Content-Type"])
        print(f"{'size':>8} {'API up MB/s':>12} {'direct up':>10} {'API/direct':>10} {'API down':>9} "
              f"{'direct down':>12} {'peak RSS +MB':>13} | CPU ms per upload: {'server':>7} {'DB':>5} {'S3 (API)':>9} "
              f"{'S3 (direct)':>11} {'direct client':>13}")
        for size in sizes:
            mb = size / 1024 / 1024
            repeats = 21 if size <= 10 * CHUNK else 3  # small transfers are noisy: the median of 21
            rows = []
            _reset_peak_rss(server.process.pid)
            base_rss = _rss_kib(server.process.pid, "VmRSS")
            for n in range(repeats):
                rows.append(_measure(server.url, headers, direct, size, pids, direct_first=n % 2 == 1))
            peak = (_rss_kib(server.process.pid, "VmHWM") - base_rss) / 1024
            api_up, direct_up, api_down, direct_down = (sorted(column)[len(column) // 2]
                                                        for column in list(zip(*rows))[:4])
            ratios = sorted(row[0] / row[1] for row in rows)  # per repetition: both paths saw the same load
            # Means: /proc counts in 10 ms ticks, so one upload's figure is 0 or 10 ms; the mean over runs is not.
            cpu = [1000 * sum(row[i] for row in rows) / len(rows) for i in range(4, 9)]
            print(f"{mb:>6.0f}MB {api_up:>12.1f} {direct_up:>10.1f} {100 * ratios[len(ratios) // 2]:>9.0f}% "
                  f"{api_down:>9.1f} {direct_down:>12.1f} {peak:>13.1f} |                    {cpu[0]:>7.1f} "
                  f"{cpu[4]:>5.1f} {cpu[1]:>9.1f} {cpu[2]:>11.1f} {cpu[3]:>13.1f}")
        print("peak RSS +MB: VmHWM of all server processes during that size's transfers minus their RSS before "
              "(peaks reset per size through /proc/PID/clear_refs); API/direct: median of the per-repetition "
              "ratios; S3 CPU only for the moto server started here")


def _measure(url, headers, direct, size, pids: dict, direct_first: bool) -> tuple:
    """One API upload and one direct upload back to back (order given), then both downloads. Returns MB/s (API up,
    direct up, API down, direct down) and CPU seconds (server per API upload, S3 per API upload, S3 per direct
    upload, this process per direct upload, database per API upload)."""
    mb = size / 1024 / 1024
    s3_cpu = (lambda: _cpu_seconds(pids["s3"])) if pids["s3"] else (lambda: 0.0)
    known = size <= 10 * CHUNK
    data = b"".join(_body(size)) if known else None
    figures = {}

    def api_upload():
        cpu, s3, db = _cpu_seconds(pids["server"]), s3_cpu(), _cpu_seconds(pids["db"])
        start = time.perf_counter()
        response = requests.post(f"{url}/v1/files", data=data if known else _body(size), headers=headers)
        figures["api_up"] = mb / (time.perf_counter() - start)
        figures["server_cpu"], figures["s3_api_cpu"] = _cpu_seconds(pids["server"]) - cpu, s3_cpu() - s3
        figures["db_cpu"] = _cpu_seconds(pids["db"]) - db
        response.raise_for_status()
        figures["doc"] = response.json()

    def direct_upload():
        stream = io.BytesIO(data) if known else io.BufferedReader(_GenReader(_body(size)))
        s3, own = s3_cpu(), time.process_time()
        start = time.perf_counter()
        direct.put(str(size), stream, size if known else -1, headers["Content-Type"])
        figures["direct_up"] = mb / (time.perf_counter() - start)
        figures["s3_direct_cpu"], figures["client_cpu"] = s3_cpu() - s3, time.process_time() - own

    for upload in ((direct_upload, api_upload) if direct_first else (api_upload, direct_upload)):
        upload()
    doc = figures["doc"]
    start = time.perf_counter()
    with requests.get(f"{url}/v1/files/{doc['_id']}/content", headers=headers, stream=True) as got:
        for _ in got.iter_content(CHUNK):
            pass
    api_down = mb / (time.perf_counter() - start)
    requests.delete(f"{url}/v1/files/{doc['_id']}", headers=headers)  # moto keeps every object in RAM
    start = time.perf_counter()
    direct.read(str(size))
    direct_down = mb / (time.perf_counter() - start)
    direct.remove(str(size))
    return (figures["api_up"], figures["direct_up"], api_down, direct_down, figures["server_cpu"],
            figures["s3_api_cpu"], figures["s3_direct_cpu"], figures["client_cpu"], figures["db_cpu"])


def _reset_peak_rss(pid: int) -> None:
    for proc in _tree(pid):
        Path(f"/proc/{proc}/clear_refs").write_text("5")  # 5: reset VmHWM to the current RSS


class _GenReader(io.RawIOBase):
    def __init__(self, gen):
        self.gen, self.rest = gen, b""

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self.rest:
            try:
                self.rest = next(self.gen)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self.rest))
        buffer[:n], self.rest = self.rest[:n], self.rest[n:]
        return n


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=0.5).status_code < 500
    except requests.RequestException:
        return False


if __name__ == "__main__":
    main()
