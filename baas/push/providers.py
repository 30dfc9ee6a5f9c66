"""Provider adapters: how one notification reaches one device.

The delivery pipeline only knows `Provider.send(project_id, subscription, message) -> Outcome`; each subscription
names its provider ("webpush" here; "fcm" and "apns" in baas.push.fcm and baas.push.apns), so native providers slot
in without touching the pipeline.
"""
from __future__ import annotations

import asyncio
import email.utils
import functools
import hmac
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from baas.egress import TargetRefused, connect_address
from baas.push.aio import LoopThread
from baas.push.http1 import AsyncHostPool, HostPool, OriginPools
from baas.push.vapid import VapidTokens, b64url_decode

log = logging.getLogger("baas.push")

SENT, REMOVED, RETRY, FAILED = "sent", "removed", "retry", "failed"

# RFC 8291 aes128gcm in one record: 16 salt + 4 record size + 1 key-id length + 65 key-id, then 16 tag + 1 pad.
AES128GCM_OVERHEAD = 86 + 17
MAX_ENCRYPTED_PAYLOAD = 4096
RESOLVE_SECONDS = 60          # a push service's name is resolved (and checked) again after this long
# A delivery waits this long for a push service's name to resolve (getaddrinfo has no deadline of its own); a lookup
# that takes longer is a retry, not a failure: the DNS server is slow, the endpoint may be fine.
DELIVERY_LOOKUP_SECONDS = 5.0


def resolve_origin(origin: str, allowed_hosts=frozenset()) -> tuple[str, str, int, str]:
    """(scheme, host, port, the checked address to connect to) of a push-service origin (`scheme://host[:port]`);
    TargetRefused when it is not public and not in `allowed_hosts`, OSError when it does not resolve in time."""
    parts = urlsplit(origin)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, host, port, connect_address(host, port, allowed_hosts, timeout=DELIVERY_LOOKUP_SECONDS)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """What the pipeline hands a provider: the same for every subscription of one message."""
    payload: bytes
    ttl: int
    urgency: str
    topic: str | None
    native: dict | None = None      # the message's "apns" / "fcm" options (baas.push.native)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str                       # sent / removed (the device is gone) / retry / failed
    status: int | None = None       # the push service's HTTP status, None for connection errors
    reason: str = ""
    retry_after: float | None = None


class Provider(Protocol):
    name: str

    def send(self, project_id: str, subscription: dict, message: OutgoingMessage) -> Outcome: ...

    def close(self) -> None: ...


def encrypted_size(payload_length: int) -> int:
    return payload_length + AES128GCM_OVERHEAD


def origin_of(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def _origin_key(endpoint: str) -> str:
    """`scheme://netloc` of a subscription's endpoint, as start_many keys its pools (a cheaper origin_of)."""
    scheme, _, netloc = endpoint.split("/", 3)[:3]
    return f"{scheme}//{netloc}"


def parse_retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now) if moment else None


def _reason(response) -> str:
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "HTTP error"
    text = " ".join(response.body[:400].decode("utf-8", "replace").split())[:200]
    return f"{response.status} {phrase}" + (f": {text}" if text else "")


_CURVE = ec.SECP256R1()
_ECDH = ec.ECDH()
_RECORD_SIZE = (4096).to_bytes(4, "big")
_KEY_INFO = b"WebPush: info\x00"
_CEK_INFO = b"Content-Encoding: aes128gcm\x00\x01"
_NONCE_INFO = b"Content-Encoding: nonce\x00\x01"


def encrypt_aes128gcm(payload: bytes, p256dh: bytes, auth: bytes) -> bytes:
    """RFC 8291 encryption of `payload` for one subscription, as one aes128gcm record (RFC 8188).

    Written with cryptography's primitives rather than through http_ece, whose generic RFC 8188 machinery
    (several records, other versions, key labels) cost a third more per message; the tests decrypt with
    http_ece, an independent implementation. A fresh ephemeral key and salt per message, as RFC 8291 asks.
    """
    receiver = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, p256dh)
    ephemeral = ec.generate_private_key(_CURVE)
    sender = ephemeral.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    shared = ephemeral.exchange(_ECDH, receiver)
    # HKDF with SHA-256, each step one HMAC because every output fits in one block (RFC 8291 §3.3, §3.4).
    ikm = hmac.digest(hmac.digest(auth, shared, "sha256"), _KEY_INFO + p256dh + sender + b"\x01", "sha256")
    salt = os.urandom(16)
    prk = hmac.digest(salt, ikm, "sha256")
    key = hmac.digest(prk, _CEK_INFO, "sha256")[:16]
    nonce = hmac.digest(prk, _NONCE_INFO, "sha256")[:12]
    # One record: the plaintext, then the 0x02 delimiter of the last record, no padding.
    return salt + _RECORD_SIZE + b"\x41" + sender + AESGCM(key).encrypt(nonce, payload + b"\x02", None)


class WebPushProvider:
    """RFC 8030 delivery with RFC 8291 encryption and RFC 8292 (VAPID) authentication.

    One pool of kept-alive connections per push-service origin (all Chrome users are on fcm.googleapis.com,
    all Firefox users on one Mozilla host), through baas.push.http1. The origin's host name is resolved and
    checked by baas.egress when its pool is made, and again every RESOLVE_SECONDS: a push endpoint whose name
    points at a private, loopback or link-local address is refused unless the host is in push.allow_http_hosts.
    What is the same for every delivery of a message (TTL, Urgency, Topic, content headers) is encoded once per
    message; the VAPID header once per (key, origin) until shortly before its token expires.
    """
    name = "webpush"

    def __init__(self, tokens: VapidTokens, pool_size: int, timeout: float, allowed_hosts=()):
        self.tokens = tokens
        self.pool_size = pool_size
        self.timeout = timeout
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self._pools = OriginPools(RESOLVE_SECONDS, self._resolve, self._blocking_pool, HostPool.close)
        self._heads: dict[tuple, bytes] = {}
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()
        self.loop = LoopThread("baas-push-webpush")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_pools = OriginPools(RESOLVE_SECONDS, self._resolve, self._looped_pool, self._retire_looped)

    def _pool(self, origin: str, now: float) -> HostPool:
        return self._pools.get(origin, now)

    def _blocking_pool(self, scheme: str, host: str, port: int, address: str) -> HostPool:
        return HostPool(scheme, host, port, address, self.timeout, self.pool_size, self._tls)

    def _resolve(self, origin: str) -> tuple[str, str, int, str]:
        return resolve_origin(origin, self.allowed_hosts)

    def _message_head(self, message: OutgoingMessage) -> bytes:
        key = (message.ttl, message.urgency, message.topic)
        head = self._heads.get(key)
        if head is None:
            head = (f"Content-Encoding: aes128gcm\r\nContent-Type: application/octet-stream\r\n"
                    f"TTL: {message.ttl}\r\nUrgency: {message.urgency}\r\n"
                    + (f"Topic: {message.topic}\r\n" if message.topic else "")).encode("latin-1")
            if len(self._heads) > 1000:
                self._heads.clear()
            self._heads[key] = head
        return head

    @staticmethod
    def encrypt(payload: bytes, p256dh: str, auth: str) -> bytes:
        return encrypt_aes128gcm(payload, b64url_decode(p256dh), b64url_decode(auth))

    def send(self, project_id: str, subscription: dict, message: OutgoingMessage) -> Outcome:
        endpoint = subscription["endpoint"]
        scheme, _, netloc, *rest = endpoint.split("/", 3)  # validated at subscribe: scheme://host[:port]/path
        origin = f"{scheme}//{netloc}"
        now = time.time()
        try:
            pool = self._pool(origin, now)
        except TargetRefused as exc:
            return Outcome(FAILED, None, f"endpoint refused: {exc}")
        except OSError as exc:
            return Outcome(RETRY, None, f"connection error: {exc}")
        keys = subscription["keys"]
        body = self.encrypt(message.payload, keys["p256dh"], keys["auth"])
        request = b"".join((
            b"POST /", (rest[0] if rest else "").encode("latin-1"), b" HTTP/1.1\r\nHost: ", netloc.encode("latin-1"),
            b"\r\nAuthorization: ", self.tokens.header(project_id, subscription.get("vapid_key"), origin, now).encode(),
            b"\r\n", self._message_head(message), b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body))
        try:
            response = pool.post(request)
        except OSError as exc:
            return Outcome(RETRY, None, f"connection error: {type(exc).__name__}")
        return self._outcome(response, now)

    @staticmethod
    def _outcome(response, now: float) -> Outcome:
        status = response.status
        if 200 <= status < 300:
            return Outcome(SENT, status)
        if status in (404, 410):
            return Outcome(REMOVED, status, _reason(response))
        if status == 429 or status >= 500:
            return Outcome(RETRY, status, _reason(response),
                           parse_retry_after(response.headers.get("retry-after"), now))
        return Outcome(FAILED, status, _reason(response))

    # ---- many deliveries in flight from one event-loop thread

    def start_many(self, project_id: str, targets: list, message: OutgoingMessage, deliver) -> None:
        """Start every delivery of `targets` at once on the provider's event loop and return.

        `deliver([(target, outcome), ...])` is called on the loop thread as answers come in (those that come
        together in one call); each target gets exactly one outcome. Why a loop rather than a thread per
        request: encryption and HTTP are a few tens of microseconds each, and sender threads spent as much
        again taking turns on the GIL; one thread carries hundreds of requests in flight (real push services
        answer in tens of milliseconds) with no switching. At most push.senders connections per origin.
        The origin's address is checked here, in the caller's thread, so a DNS lookup never stalls the loop.
        """
        now = time.time()
        loop = self._event_loop()
        self._async_pools.warm({_origin_key(target["endpoint"]) for target in targets}, now)
        heads: dict[tuple, tuple] = {}
        jobs, early = [], []
        message_head = self._message_head(message)
        for target in targets:
            scheme, _, netloc, *rest = target["endpoint"].split("/", 3)
            origin = f"{scheme}//{netloc}"  # _origin_key, inline: this loop runs once per delivery
            found = heads.get((origin, target.get("vapid_key")))
            if found is None:
                try:
                    pool = self._async_pools.get(origin, now)
                except TargetRefused as exc:
                    early.append((target, Outcome(FAILED, None, f"endpoint refused: {exc}")))
                    continue
                except OSError as exc:
                    early.append((target, Outcome(RETRY, None, f"connection error: {exc}")))
                    continue
                auth = self.tokens.header(project_id, target.get("vapid_key"), origin, now).encode()
                found = heads[(origin, target.get("vapid_key"))] = (pool, b"\r\nHost: " + netloc.encode("latin-1")
                                                                    + b"\r\nAuthorization: " + auth + b"\r\n"
                                                                    + message_head)
            pool, head = found
            jobs.append((target, pool, b"POST /" + (rest[0] if rest else "").encode("latin-1") + b" HTTP/1.1"
                         + head))
        loop.call_soon_threadsafe(self._start_jobs, jobs, early, message.payload, _Sink(loop, deliver))

    def _start_jobs(self, jobs: list, early: list, payload: bytes, sink: "_Sink") -> None:
        for target, outcome in early:
            sink.add(target, outcome)
        answered = self._answered
        for target, pool, head in jobs:
            try:
                keys = target["keys"]
                body = self.encrypt(payload, keys["p256dh"], keys["auth"])
            except Exception as exc:  # a key the subscribe checks let through fails its delivery, not the rest
                sink.add(target, Outcome(FAILED, None, f"provider error: {type(exc).__name__}"))
                continue
            try:
                pool.post(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body),
                          functools.partial(answered, target, sink))
            except Exception as exc:  # every target must get its outcome, or its batch would wait for it
                log.exception("push request to %s failed to start", pool.host)
                sink.add(target, Outcome(RETRY, None, f"connection error: {type(exc).__name__}"))

    def _answered(self, target: dict, sink: "_Sink", response) -> None:
        if isinstance(response, BaseException):
            sink.add(target, Outcome(RETRY, None, f"connection error: {type(response).__name__}"))
        else:
            sink.add(target, self._outcome(response, time.time()))

    def send_many(self, project_id: str, targets: list, message: OutgoingMessage) -> list[Outcome]:
        """Outcomes in the order of `targets`, all sent concurrently (see start_many)."""
        if not targets:
            return []
        outcomes: dict[int, Outcome] = {}
        finished = threading.Event()

        def deliver(pairs):
            for target, outcome in pairs:
                outcomes[id(target)] = outcome
            if len(outcomes) == len(targets):
                finished.set()

        self.start_many(project_id, targets, message, deliver)
        # Every request has its own timeout on the loop; this only guards against a loop that died.
        finished.wait(self.timeout * (2 + len(targets) / max(1, self.pool_size)) + 5)
        lost = Outcome(RETRY, None, "connection error: no answer from the sender loop")
        return [outcomes.get(id(target), lost) for target in targets]

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            with self._lock:
                if self._loop is None:
                    self._loop = self.loop.run(_running_loop(), 10)
                loop = self._loop
        return loop

    def _looped_pool(self, scheme: str, host: str, port: int, address: str) -> AsyncHostPool:
        return AsyncHostPool(self._event_loop(), scheme, host, port, address, self.timeout, self.pool_size,
                             self._tls)

    def _retire_looped(self, pool: AsyncHostPool) -> None:
        self._event_loop().call_soon_threadsafe(pool.close)

    def close(self) -> None:
        for pool in self._pools.take_all():
            pool.close()
        with self._lock:
            pools, self._loop = self._async_pools.take_all(), None

        async def close_pools():
            for pool in pools:
                pool.close()

        self.loop.close(close_pools)


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


class _Sink:
    """Outcomes gathered on the loop and handed on together, once per loop iteration (one hand-off for all the
    answers that arrived together, instead of one per delivery)."""
    __slots__ = ("loop", "deliver", "ready")

    def __init__(self, loop, deliver):
        self.loop, self.deliver, self.ready = loop, deliver, []

    def add(self, target: dict, outcome: Outcome) -> None:
        if not self.ready:
            self.loop.call_soon(self._flush)
        self.ready.append((target, outcome))

    def _flush(self) -> None:
        ready, self.ready = self.ready, []
        self.deliver(ready)
