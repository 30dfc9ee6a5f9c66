"""Push fan-out benchmark: one message to N devices (default 10,000), delivered by `baas worker` processes.

Starts nx-27017 in a temporary folder and a loopback service that accepts and counts: a Web Push receiver
(--provider webpush, the default: N subscriptions with real P-256 keys, every delivery encrypted), the tests'
FCM emulator (--provider fcm: OAuth token exchange, then messages:send), or the tests' APNs emulator
(--provider apns: HTTP/2 over TLS, ES256 provider JWT, one multiplexed connection). For each worker count
(default 1 and 2) it sends one message to everyone and measures deliveries per second and the time from the
send (202) to the last delivery. Worker CPU time (from /proc) over the run is printed beside it, as ms per
delivery, and so is the receiver's (this process), which shares the same 2 cores.

    python benchmarks/push.py                        # 10,000 Web Push subscriptions, 1 and 2 workers
    python benchmarks/push.py --provider apns --workers 1
    python benchmarks/push.py --subscriptions 2000 --workers 1,2,4 --senders 64

See docs/performance.md ("Push fan-out") for a recorded run.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "push"))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from baas.push.vapid import b64url  # noqa: E402
from baas.storage.embedded import EmbeddedMongo  # noqa: E402
from baas.util import new_id, utcnow  # noqa: E402
from native_emulators import ApnsEmulator, FcmEmulator  # noqa: E402
from push_receiver import PushReceiver  # noqa: E402  (the tests' push service; here it accepts and counts)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def start_service(args, folder: Path):
    """The loopback service of --provider, counting what it accepts, and the config keys it needs."""
    if args.provider == "apns":
        service = ApnsEmulator(folder / "apns", count_only=True)
        return service, {"native_ca_file": service.ca_file}
    if args.provider == "fcm":
        return FcmEmulator(count_only=True), {}
    return PushReceiver(count_only=True), {}


def configure(svc, args, receiver) -> None:
    credentials = svc.extra["push"].credentials
    if args.provider == "apns":
        credentials.save("bench", "apns", {**receiver.signing_key(), "base_url": receiver.origin})
    elif args.provider == "fcm":
        credentials.save("bench", "fcm", {"service_account": receiver.service_account(), "base_url": receiver.origin})


def run(args) -> list[dict]:
    from baas import create_app
    from baas.principal import Principal
    from baas.runtime import ensure_indexes

    folder = Path(tempfile.mkdtemp(prefix="baas-push-bench-"))
    mongo = EmbeddedMongo(folder / "db").start()
    receiver, push_config = start_service(args, folder)
    config = {"data_dir": str(folder / "data"), "mongodb": {"uri": mongo.uri},
              "jwt": {"secret": "bench-secret-" + "x" * 32}, "admin_token": "bench-admin-token-123456",
              "push": {"allow_http_hosts": ["127.0.0.1"], "senders": args.senders, "batch_size": args.batch_size,
                       "poll_seconds": 0.2, **push_config}}
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
    for workers in args.workers:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAAS_")}
        processes = [subprocess.Popen([sys.executable, "-m", "baas", "worker", "--config",
                                       str(folder / "worker.yaml")], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) for _ in range(workers)]
        time.sleep(2.0)  # let them import and connect: the run measures delivery, not start-up
        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        own_before = time.process_time()   # this process: the receiver/emulator (and this polling loop)
        receiver.count = 0
        started = time.monotonic()
        message = push.send(Principal(project=svc.projects.info("bench"), admin=True),
                            {"audience": {"all": True}, "notification": {"title": "Bench", "body": "fan-out"}})
        deadline = started + args.timeout
        while receiver.count < args.subscriptions and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = receiver.last_at - started
        cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
        receiver_cpu = time.process_time() - own_before
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        row = {"provider": args.provider, "workers": workers, "subscriptions": args.subscriptions,
               "delivered": receiver.count,
               "seconds_to_last": round(elapsed, 2), "deliveries_per_s": round(receiver.count / elapsed),
               "worker_cpu_ms_per_delivery": round(cpu * 1000 / max(1, receiver.count), 3),
               "receiver_cpu_ms_per_delivery": round(receiver_cpu * 1000 / max(1, receiver.count), 3),
               "message": message["id"]}
        results.append(row)
        if args.provider == "apns":
            row["http2_connections"] = len(receiver.connections)
            receiver.connections.clear()
        print(f"{args.provider}, {workers} worker(s): {row['delivered']}/{args.subscriptions} delivered, last after "
              f"{row['seconds_to_last']} s, {row['deliveries_per_s']} deliveries/s, "
              f"{row['worker_cpu_ms_per_delivery']} ms worker CPU per delivery "
              f"({row['receiver_cpu_ms_per_delivery']} ms in the receiver)"
              + (f", {row['http2_connections']} HTTP/2 connection(s)" if "http2_connections" in row else ""),
              flush=True)
    svc.close()
    receiver.close()
    mongo.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", choices=("webpush", "fcm", "apns"), default="webpush")
    parser.add_argument("--subscriptions", type=int, default=10_000, help="devices (of --provider) to send to")
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
