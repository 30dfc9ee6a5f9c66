"""Push fan-out benchmark: one message to N devices (default 10,000), delivered by `baas worker` processes.

Starts nx-27017 in a temporary folder and a loopback service that accepts and counts, in a process of its own
(so it takes little of the shared cores and its CPU is measured apart): for --provider webpush (the default) a
lean asyncio push service and N Web Push subscriptions with real P-256 keys, every delivery encrypted; for
--provider fcm|apns benchmarks/native_receiver.py, a count-only FCM service (keep-alive HTTP/1.1, one OAuth
token exchange, then messages:send) or APNs service (h2 over TLS with a test CA, one multiplexed connection per
worker). `--receiver emulator` uses the tests' verifying emulators instead (in this process: "push service"
CPU is then this process's; hypercorn's HTTP/2 costs about as much as the worker). For each worker count
(default 1 and 2) it sends one message to everyone and measures deliveries per second and the time from the
send (202) to the last delivery. CPU time (from /proc) over the run is printed per delivery for the workers,
the push service and nx-27017, beside the baseline measured in the same run: the Web Push encryption alone
(RFC 8291, what no implementation can skip).

    python benchmarks/push.py                        # 10,000 Web Push subscriptions, 1 and 2 workers
    python benchmarks/push.py --provider apns --workers 1
    python benchmarks/push.py --provider fcm --receiver emulator --workers 1
    python benchmarks/push.py --subscriptions 2000 --workers 1,2,4 --senders 64
    python benchmarks/push.py --profile 2000         # cProfile of one in-process worker over 2,000 deliveries
    python benchmarks/push.py --provider apns --workers 1 --timing   # where each batch's time went

See docs/performance.md ("Push fan-out") for a recorded run.
"""
from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import pstats
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "push"))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

from baas.push.vapid import b64url  # noqa: E402
from baas.storage.embedded import EmbeddedMongo  # noqa: E402
from baas.util import new_id, utcnow  # noqa: E402
from native_emulators import ApnsEmulator, FcmEmulator, make_test_ca, pem_text  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The push service: answers every POST 201 and counts; GET /count answers "<count> <monotonic time of the last>".
RECEIVER = r"""
import asyncio, sys, time
count, last = 0, 0.0
class Service(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        global count, last
        buffer = self.buffer + data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15:].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(buffer) < end + 4 + length:
                break
            buffer = buffer[end + 4 + length:]
            if head.startswith(b"get /count"):
                text = f"{count} {last}".encode()
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))
                continue
            count, last = count + 1, time.monotonic()
            self.transport.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        self.buffer = buffer
async def main():
    server = await asyncio.get_running_loop().create_server(Service, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


class CountingService:
    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE)
        self.port = int(self.process.stdout.readline())
        self.origin = f"http://127.0.0.1:{self.port}"
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port)

    def count(self) -> tuple[int, float]:
        self.connection.request("GET", "/count")
        count, last = self.connection.getresponse().read().split()
        return int(count), float(last)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


class InProcessEmulator:
    """The tests' FCM or APNs emulator in count-only mode, seen through CountingService's interface."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.origin = emulator.origin

    def count(self) -> tuple[int, float]:
        return self.emulator.count, self.emulator.last_at

    def cpu_seconds(self) -> float:
        return time.process_time()  # this process: the emulator and the polling loop

    def close(self) -> None:
        self.emulator.close()


def encryption_baseline(count: int = 2000) -> float:
    """CPU ms per delivery of the RFC 8291 encryption alone, measured now on this machine."""
    from baas.push.providers import encrypt_aes128gcm

    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    auth, payload = os.urandom(16), b'{"title":"Bench","body":"fan-out","message_id":"pm_0123456789abcdef"}'
    started = time.process_time()
    for _ in range(count):
        encrypt_aes128gcm(payload, point, auth)
    return (time.process_time() - started) * 1000 / count


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def seed(app, project_id: str, origin: str, count: int) -> None:
    service = app.extensions["baas"].extra["push"]
    key_id = service.keys.current(project_id)["id"]
    points = []
    for _ in range(16):  # a few device keys are enough: encryption is per delivery with a fresh ephemeral key
        private_key = ec.generate_private_key(ec.SECP256R1())
        points.append(b64url(private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)))
    now = utcnow()
    docs = [{"_id": new_id("ps_"), "endpoint": f"{origin}/push/{i}", "provider": "webpush",
             "keys": {"p256dh": points[i % 16], "auth": b64url(os.urandom(16))}, "expiration_time": None,
             "user_id": f"u_{i}", "topics": [], "vapid_key": key_id, "created_at": now, "updated_at": now}
            for i in range(count)]
    collection = service.subscriptions(project_id)
    for start in range(0, count, 1000):
        collection.insert_many(docs[start:start + 1000])


def seed_devices(app, project_id: str, provider: str, count: int) -> None:
    service = app.extensions["baas"].extra["push"]
    now = utcnow()
    docs = []
    for i in range(count):
        token = os.urandom(32).hex() if provider == "apns" else f"bench-{i}:APA91b{os.urandom(60).hex()}"
        docs.append({"_id": new_id("pd_"), "endpoint": f"{provider}:{token}", "provider": provider, "token": token,
                     "platform": "ios" if provider == "apns" else "android", "topics": [], "user_id": f"u_{i}",
                     "app_version": None, "locale": None, "created_at": now, "updated_at": now})
    collection = service.subscriptions(project_id)
    for start in range(0, count, 1000):
        collection.insert_many(docs[start:start + 1000])


class LeanReceiver:
    """benchmarks/native_receiver.py in a process of its own: counts, answers, verifies nothing."""

    def __init__(self, provider: str, folder: Path):
        script = str(Path(__file__).resolve().parent / "native_receiver.py")
        extra = []
        self.ca_file = None
        if provider == "apns":
            self.ca_file, cert_file, key_file = make_test_ca(folder / "apns")
            extra = [cert_file, key_file]
        self.process = subprocess.Popen([sys.executable, script, provider, *extra], stdout=subprocess.PIPE)
        ports = [int(p) for p in self.process.stdout.readline().split()]
        scheme = "https" if provider == "apns" else "http"
        self.origin = f"{scheme}://127.0.0.1:{ports[0]}"
        self.connection = http.client.HTTPConnection("127.0.0.1", ports[-1])

    def stats(self) -> tuple[int, float, int, int]:
        """(deliveries, monotonic time of the last, FCM token requests or APNs connections, distinct bearers)"""
        self.connection.request("GET", "/count")
        count, last, extra, bearers = self.connection.getresponse().read().split()
        return int(count), float(last), int(extra), int(bearers)

    def count(self) -> tuple[int, float]:
        return self.stats()[:2]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def start_service(args, folder: Path):
    """The loopback service of --provider, counting what it accepts, and the config keys it needs."""
    if args.provider == "webpush":
        return CountingService(), {}
    if args.receiver == "lean":
        receiver = LeanReceiver(args.provider, folder)
        return receiver, ({"native_ca_file": receiver.ca_file} if receiver.ca_file else {})
    if args.provider == "apns":
        emulator = ApnsEmulator(folder / "apns", count_only=True)
        return InProcessEmulator(emulator), {"native_ca_file": emulator.ca_file}
    return InProcessEmulator(FcmEmulator(count_only=True)), {}


def configure(svc, args, receiver) -> None:
    credentials = svc.extra["push"].credentials
    if isinstance(receiver, LeanReceiver):
        if args.provider == "apns":
            key = ec.generate_private_key(ec.SECP256R1())
            credentials.save("bench", "apns", {"key": pem_text(key), "key_id": "BENCHKEY01", "team_id": "BENCHTEAM1",
                                               "bundle_id": "com.example.bench", "base_url": receiver.origin})
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            credentials.save("bench", "fcm", {"service_account": {
                "type": "service_account", "project_id": "bench", "private_key_id": "0" * 40,
                "private_key": pem_text(key), "client_email": "bench@bench.iam.gserviceaccount.com",
                "client_id": "1" * 21, "token_uri": f"{receiver.origin}/token"}, "base_url": receiver.origin})
    elif args.provider == "apns":
        credentials.save("bench", "apns", {**receiver.emulator.signing_key(), "base_url": receiver.origin})
    elif args.provider == "fcm":
        credentials.save("bench", "fcm", {"service_account": receiver.emulator.service_account(),
                                          "base_url": receiver.origin})


def run(args) -> list[dict]:
    from baas import create_app
    from baas.principal import Principal
    from baas.runtime import ensure_indexes

    folder = Path(tempfile.mkdtemp(prefix="baas-push-bench-"))
    mongo = EmbeddedMongo(folder / "db").start()
    receiver, push_config = start_service(args, folder)
    config = {"data_dir": str(folder / "data"), "mongodb": {"uri": mongo.uri},
              "jwt": {"secret": "bench-secret-" + "x" * 32}, "admin_token": "bench-admin-token-123456",
              "push": {"allow_http_hosts": ["127.0.0.1"], "poll_seconds": 0.2, **push_config}}
    # The product's defaults unless told otherwise: the benchmark measures what a deployment gets.
    if args.senders is not None:
        config["push"]["senders"] = args.senders
    if args.batch_size is not None:
        config["push"]["batch_size"] = args.batch_size
    app = create_app(config)
    ensure_indexes(app.extensions["baas"])
    svc = app.extensions["baas"]
    svc.projects.create("bench")
    if args.provider == "webpush":
        seed(app, "bench", receiver.origin, args.subscriptions)
    else:
        configure(svc, args, receiver)
        seed_devices(app, "bench", args.provider, args.subscriptions)
    (folder / "worker.yaml").write_text(json.dumps(config))
    push = svc.extra["push"]
    results = []
    if args.profile:
        profile(app, svc, push, receiver, args)
        receiver.close()
        svc.close()
        mongo.stop()
        return results
    baseline = encryption_baseline()
    print(f"baseline: RFC 8291 encryption alone {baseline:.3f} ms CPU per delivery (this machine, now)", flush=True)
    for workers in args.workers:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAAS_")}
        timing_file = folder / f"timing-{workers}.jsonl"
        if args.timing:
            env["BAAS_PUSH_TIMING"] = str(timing_file)
        processes = [subprocess.Popen([sys.executable, "-m", "baas", "worker", "--config",
                                       str(folder / "worker.yaml")], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) for _ in range(workers)]
        time.sleep(2.0)  # let them import and connect: the run measures delivery, not start-up
        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        service_before, db_before = receiver.cpu_seconds(), cpu_seconds(mongo.process.pid)
        counted_before = receiver.count()[0]
        extra_before = receiver.stats()[2] if isinstance(receiver, LeanReceiver) else 0
        started = time.monotonic()
        message = push.send(Principal(project=svc.projects.info("bench"), admin=True),
                            {"audience": {"all": True}, "notification": {"title": "Bench", "body": "fan-out"}})
        deadline = started + args.timeout
        while True:
            count, last_at = receiver.count()
            delivered = count - counted_before
            if delivered >= args.subscriptions or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        elapsed = last_at - started
        cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
        service_cpu = receiver.cpu_seconds() - service_before
        db_cpu = cpu_seconds(mongo.process.pid) - db_before
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        per = 1000 / max(1, delivered)
        row = {"provider": args.provider, "workers": workers, "subscriptions": args.subscriptions, "delivered": delivered,
               "seconds_to_last": round(elapsed, 2), "deliveries_per_s": round(delivered / elapsed),
               "worker_cpu_ms_per_delivery": round(cpu * per, 3),
               "push_service_cpu_ms_per_delivery": round(service_cpu * per, 3),
               "database_cpu_ms_per_delivery": round(db_cpu * per, 3),
               "baseline_encryption_ms_per_delivery": round(baseline, 3),
               "load_average": os.getloadavg()[0], "message": message["id"]}
        if isinstance(receiver, LeanReceiver):
            _, _, extra, bearers = receiver.stats()
            row["http2_connections" if args.provider == "apns" else "token_requests"] = extra - extra_before
            row["distinct_bearer_tokens"] = bearers
        elif args.provider == "apns":
            row["http2_connections"] = len(receiver.emulator.connections)
            receiver.emulator.connections.clear()
        if args.timing:
            row["timing"] = timing_summary(timing_file)
        results.append(row)
        print(f"{args.provider}, {workers} worker(s): {row['delivered']}/{args.subscriptions} delivered, last after "
              f"{row['seconds_to_last']} s, {row['deliveries_per_s']} deliveries/s; CPU per delivery: "
              f"workers {row['worker_cpu_ms_per_delivery']} ms, push service "
              f"{row['push_service_cpu_ms_per_delivery']} ms, nx-27017 {row['database_cpu_ms_per_delivery']} ms "
              f"(load average {row['load_average']:.1f})"
              + (f", {row['http2_connections']} HTTP/2 connection(s)" if "http2_connections" in row else "")
              + (f", {row['token_requests']} token request(s)" if "token_requests" in row else "")
              + (f", {row['distinct_bearer_tokens']} distinct bearer token(s) so far"
                 if "distinct_bearer_tokens" in row else ""),
              flush=True)
        if args.timing:
            print_timing(row["timing"])
    receiver.close()
    svc.close()
    mongo.stop()
    return results


def timing_summary(path: Path) -> dict:
    """The workers' BAAS_PUSH_TIMING lines summed over the batches: seconds per phase, mean window occupancy."""
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    planned = sum(line["seconds"] for line in lines if not line["deliveries"])
    lines = [line for line in lines if line["deliveries"]]
    phases: dict[str, float] = {}
    for line in lines:
        for name, seconds in line["phases"].items():
            phases[name] = phases.get(name, 0.0) + seconds
    seconds = sum(line["seconds"] for line in lines)
    return {"batches": len(lines), "batch_seconds": round(seconds, 3), "plan_seconds": round(planned, 3),
            "phases": {k: round(v, 3) for k, v in sorted(phases.items(), key=lambda kv: -kv[1])},
            "mean_inflight": round(sum(line["mean_inflight"] * line["seconds"] for line in lines) / seconds, 1)
            if seconds else 0.0}


def print_timing(summary: dict) -> None:
    total = summary["batch_seconds"] + summary["phases"].get("claim", 0.0) or 1.0
    shares = ", ".join(f"{name} {seconds:.3f} s ({seconds * 100 / total:.0f}%)"
                       for name, seconds in summary["phases"].items())
    print(f"  timing: planning {summary['plan_seconds']} s; {summary['batches']} batches "
          f"({summary['batch_seconds']} s in deliver): {shares}; "
          f"mean in flight {summary['mean_inflight']}", flush=True)


def profile(app, svc, push, receiver, args) -> None:
    """One worker in this process under cProfile, delivering one message to the first --profile subscriptions."""
    from baas.principal import Principal
    from baas.push import background_runners

    ids = [s["_id"] for s in push.subscriptions("bench").find({}, {"_id": 1}).limit(args.profile)]
    push.subscriptions("bench").update_many({"_id": {"$in": ids}}, {"$set": {"topics": ["profiled"]}})
    runner, = background_runners(svc)
    push.send(Principal(project=svc.projects.info("bench"), admin=True),
              {"audience": {"topics": ["profiled"]}, "notification": {"title": "Bench", "body": "fan-out"}})
    profiler = cProfile.Profile()  # the batch loop's thread; each sender thread gets its own below
    senders: dict[int, cProfile.Profile] = {}
    send = runner.senders.send

    def profiled_send(*args):
        own = senders.setdefault(threading.get_ident(), cProfile.Profile())
        own.enable()
        try:
            return send(*args)
        finally:
            own.disable()

    runner.senders.send = profiled_send
    # A provider with an event loop (Web Push) sends from its loop thread: profile that thread too.
    looped = [p for p in runner.providers.values() if hasattr(p, "start_many")]
    loop_profiles = []
    for provider in looped:
        loop_profiles.append(cProfile.Profile())
        provider._event_loop().call_soon_threadsafe(loop_profiles[-1].enable)
    loop = push.providers["apns"].loop._ensure() if args.provider == "apns" else None
    if loop is not None:  # APNs streams run on the provider's asyncio loop thread: profile it too
        senders[-1] = cProfile.Profile()
        loop.call_soon_threadsafe(senders[-1].enable)
    started, cpu = time.monotonic(), time.process_time()
    profiler.enable()
    runner.drain(timeout=args.timeout)
    profiler.disable()
    for provider, own in zip(looped, loop_profiles):
        provider.loop.run(_call(own.disable), 10)
    if loop is not None:
        stopped = threading.Event()
        loop.call_soon_threadsafe(lambda: (senders[-1].disable(), stopped.set()))
        stopped.wait(10)
    cpu, elapsed = time.process_time() - cpu, time.monotonic() - started
    runner.close()
    print(f"{len(ids)} deliveries in {elapsed:.2f} s, {cpu * 1000 / len(ids):.3f} ms CPU per delivery "
          f"(all threads, under the profiler)")
    pstats.Stats(profiler, *senders.values(), *loop_profiles).sort_stats("tottime").print_stats(40)


async def _call(function):
    return function()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", choices=("webpush", "fcm", "apns"), default="webpush")
    parser.add_argument("--subscriptions", type=int, default=10_000, help="devices (of --provider) to send to")
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--receiver", choices=("lean", "emulator"), default="lean",
                        help="fcm/apns: the lean count-only receiver process (default) or the tests' emulator")
    parser.add_argument("--senders", type=int, default=None, help="push.senders (default: the config default)")
    parser.add_argument("--batch-size", type=int, default=None, help="push.batch_size (default: the config default)")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--timing", action="store_true",
                        help="have the workers record where each batch's time goes (BAAS_PUSH_TIMING) and print it")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile one in-process worker over N deliveries instead")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
