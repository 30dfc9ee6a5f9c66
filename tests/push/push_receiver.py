"""A loopback push service: verifies VAPID like a real one, decrypts like a browser, answers as told."""
from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


# The app config of the push tests: a loopback push service over plain http, fast retries, small batches.
PUSH_CONFIG = {"push.allow_http_hosts": ["127.0.0.1"], "push.retry_base_seconds": 0.05,
               "push.retry_max_seconds": 2, "push.poll_seconds": 0.1, "push.senders": 4, "push.batch_size": 7}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """A browser's side of one subscription: its key pair and auth secret."""
    token: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, **extra) -> dict:
        point = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                           serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)}, **extra}


@dataclass
class Received:
    token: str
    payload: dict | None
    headers: dict
    claims: dict
    public_key: str
    error: str | None = None


class PushReceiver:
    def __init__(self, count_only: bool = False):
        self.devices: dict[str, Device] = {}
        self.received: list[Received] = []
        self.attempts: dict[str, list[float]] = {}
        self.plans: dict[str, list] = {}     # token -> [(status, headers)] answered in turn, then 201
        self.delay = 0.0
        self.count_only = count_only
        self.count = 0
        self.last_at = 0.0
        self.lock = threading.Lock()
        self.hold_tokens: set = set()       # see hold()
        self.hold_after = 0
        self.held = 0
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                receiver._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def device(self) -> Device:
        token = b64url(os.urandom(12))
        device = Device(token, f"{self.origin}/push/{token}")
        self.devices[token] = device
        return device

    def answer(self, device: Device, *responses) -> None:
        """Make the next requests for `device` answer these (status, headers) before falling back to 201."""
        self.plans[device.token] = list(responses)

    def hold(self, tokens, after: int) -> None:
        """Accept and record requests for `tokens`, but leave every one after the first `after` unanswered
        until release(): the sender is then stuck with requests that did arrive."""
        with self.lock:
            self.hold_tokens, self.hold_after, self.held = set(tokens), after, 0
            self.released.clear()

    def release(self) -> None:
        with self.lock:
            self.hold_tokens = set()
        self.released.set()

    def _held(self, token: str) -> None:
        with self.lock:
            if token not in self.hold_tokens:
                return
            self.hold_after -= 1
            if self.hold_after >= 0:
                return
            self.held += 1
        self.released.wait(60)

    def for_device(self, device: Device) -> list[Received]:
        return [r for r in self.received if r.token == device.token]

    def _handle(self, request) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        token = request.path.rsplit("/", 1)[-1]
        if self.count_only:
            with self.lock:
                self.count += 1
                self.last_at = time.monotonic()
            return self._reply(request, 201)
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.attempts.setdefault(token, []).append(time.monotonic())
            plan = self.plans.get(token)
            status, headers = plan.pop(0) if plan else (201, {})
        if status != 201:
            return self._reply(request, status, headers, b"told to fail")
        device = self.devices.get(token)
        if device is None:
            return self._reply(request, 404)
        record = self._verify(token, device, request, body)
        with self.lock:
            self.received.append(record)
        self._held(token)
        self._reply(request, 400 if record.error else 201, {}, (record.error or "").encode())

    def _verify(self, token, device, request, body) -> Received:
        headers = {k: v for k, v in request.headers.items()}
        try:
            scheme, _, params = headers["Authorization"].partition(" ")
            assert scheme == "vapid", "not a vapid authorization"
            parts = dict(p.strip().split("=", 1) for p in params.split(","))
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(parts["k"]))
            claims = jwt.decode(parts["t"], public, algorithms=["ES256"], audience=self.origin)
            assert claims["exp"] <= time.time() + 24 * 3600, "exp more than 24 h ahead"
            assert claims["sub"].startswith(("mailto:", "https:")), "sub is not mailto: or https:"
            assert headers.get("Content-Encoding") == "aes128gcm"
            assert len(body) <= 4096
            plaintext = http_ece.decrypt(body, private_key=device.private_key, auth_secret=device.auth,
                                         version="aes128gcm")
            return Received(token, json.loads(plaintext), headers, claims, parts["k"])
        except Exception as exc:
            return Received(token, None, headers, {}, "", error=f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _reply(request, status: int, headers: dict | None = None, body: bytes = b"") -> None:
        try:
            request.send_response(status)
            for name, value in (headers or {}).items():
                request.send_header(name, value)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except OSError:
            request.close_connection = True  # the sender is gone (a killed worker)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
