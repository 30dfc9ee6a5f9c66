"""Provider adapters: how one notification reaches one device.

The delivery pipeline only knows `Provider.send(project_id, subscription, message) -> Outcome`; each subscription
names its provider ("webpush" here; "fcm" and "apns" in baas.push.fcm and baas.push.apns), so native providers slot
in without touching the pipeline.
"""
from __future__ import annotations

import email.utils
import hmac
import os
import socket
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

from baas.egress import TargetRefused, resolve_public
from baas.push.http1 import HostPool
from baas.push.vapid import VapidTokens, b64url_decode

SENT, REMOVED, RETRY, FAILED = "sent", "removed", "retry", "failed"

# RFC 8291 aes128gcm in one record: 16 salt + 4 record size + 1 key-id length + 65 key-id, then 16 tag + 1 pad.
AES128GCM_OVERHEAD = 86 + 17
MAX_ENCRYPTED_PAYLOAD = 4096
RESOLVE_SECONDS = 60          # a push service's name is resolved (and checked) again after this long


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
        self._pools: dict[str, tuple[HostPool, float]] = {}
        self._heads: dict[tuple, bytes] = {}
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()

    def _pool(self, origin: str, now: float) -> HostPool:
        found = self._pools.get(origin)
        if found is not None and found[1] > now:
            return found[0]
        with self._lock:
            found = self._pools.get(origin)
            if found is not None and found[1] > now:
                return found[0]
            parts = urlsplit(origin)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if host in self.allowed_hosts:
                address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0][4][0]
            else:
                address = resolve_public(host, port)[0]
            pool = found[0] if found is not None and found[0].address == address else None
            if pool is None:
                if found is not None:
                    found[0].close()
                pool = HostPool(parts.scheme, host, port, address, self.timeout, self.pool_size, self._tls)
            self._pools[origin] = (pool, now + RESOLVE_SECONDS)
            return pool

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
        status = response.status
        if 200 <= status < 300:
            return Outcome(SENT, status)
        if status in (404, 410):
            return Outcome(REMOVED, status, _reason(response))
        if status == 429 or status >= 500:
            return Outcome(RETRY, status, _reason(response),
                           parse_retry_after(response.headers.get("retry-after"), now))
        return Outcome(FAILED, status, _reason(response))

    def close(self) -> None:
        with self._lock:
            for pool, _ in self._pools.values():
                pool.close()
            self._pools.clear()
