"""Provider adapters: how one notification reaches one device.

The delivery pipeline only knows `Provider.send(project_id, subscription, message) -> Outcome`; each subscription
names its provider ("webpush" here; "fcm" and "apns" in baas.push.fcm and baas.push.apns), so native providers slot
in without touching the pipeline.
"""
from __future__ import annotations

import email.utils
import os
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol
from urllib.parse import urlsplit

import http_ece
import urllib3
from cryptography.hazmat.primitives.asymmetric import ec
from urllib3.exceptions import HTTPError as TransportError

from baas.push.vapid import VapidTokens, b64url_decode

SENT, REMOVED, RETRY, FAILED = "sent", "removed", "retry", "failed"

# RFC 8291 aes128gcm in one record: 16 salt + 4 record size + 1 key-id length + 65 key-id, then 16 tag + 1 pad.
AES128GCM_OVERHEAD = 86 + 17
MAX_ENCRYPTED_PAYLOAD = 4096


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
    text = " ".join(response.data[:400].decode("utf-8", "replace").split())[:200]
    return f"{response.status} {phrase}" + (f": {text}" if text else "")


class WebPushProvider:
    """RFC 8030 delivery with RFC 8291 encryption and RFC 8292 (VAPID) authentication.

    One connection pool per push-service origin keeps connections alive across the many subscriptions that
    share a push service (all Chrome users are on fcm.googleapis.com, all Firefox users on one Mozilla host).
    The pools are urllib3's, which requests.Session wraps: the session's per-request preparation (cookies, hooks,
    environment merging) cost more CPU than the encryption, and none of it applies to push deliveries.
    """
    name = "webpush"

    def __init__(self, tokens: VapidTokens, pool_size: int, timeout: float):
        self.tokens = tokens
        self.pool_size = pool_size
        self.timeout = timeout
        self._pools: dict[str, urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def _pool(self, origin: str) -> urllib3.HTTPConnectionPool:
        pool = self._pools.get(origin)
        if pool is None:
            with self._lock:
                pool = self._pools.get(origin)
                if pool is None:
                    # HTTPS pools verify certificates against the system store (urllib3's default).
                    pool = urllib3.connection_from_url(origin, maxsize=self.pool_size, block=False, retries=False,
                                                       timeout=urllib3.Timeout(total=self.timeout))
                    self._pools[origin] = pool
        return pool

    @staticmethod
    def encrypt(payload: bytes, p256dh: str, auth: str) -> bytes:
        return http_ece.encrypt(payload, salt=os.urandom(16), private_key=ec.generate_private_key(ec.SECP256R1()),
                                dh=b64url_decode(p256dh), auth_secret=b64url_decode(auth), version="aes128gcm")

    def send(self, project_id: str, subscription: dict, message: OutgoingMessage) -> Outcome:
        endpoint = subscription["endpoint"]
        origin = origin_of(endpoint)
        body = self.encrypt(message.payload, subscription["keys"]["p256dh"], subscription["keys"]["auth"])
        headers = {
            "Authorization": self.tokens.header(project_id, subscription.get("vapid_key"), origin),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(message.ttl),
            "Urgency": message.urgency,
        }
        if message.topic:
            headers["Topic"] = message.topic
        try:
            response = self._pool(origin).urlopen("POST", endpoint, body=body, headers=headers, redirect=False,
                                                  assert_same_host=True)
        except (TransportError, OSError) as exc:
            return Outcome(RETRY, None, f"connection error: {type(exc).__name__}")
        status = response.status
        if 200 <= status < 300:
            return Outcome(SENT, status)
        if status in (404, 410):
            return Outcome(REMOVED, status, _reason(response))
        if status == 429 or status >= 500:
            return Outcome(RETRY, status, _reason(response),
                           parse_retry_after(response.headers.get("Retry-After"), time.time()))
        return Outcome(FAILED, status, _reason(response))

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
