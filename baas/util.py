"""Small helpers shared by services."""
from __future__ import annotations

import hashlib
import itertools
import os
import random
import secrets
import time
import weakref
from datetime import datetime, timezone


def utcnow() -> datetime:
    # MongoDB keeps milliseconds; truncating here keeps what we return equal to what a re-read returns.
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def new_revision() -> str:
    """A document's or file's revision (its ETag for If-Match). It only has to differ from the one before it, not
    be secret: no system call."""
    return f"{random.getrandbits(48):012x}"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def new_id(prefix: str = "", nbytes: int = 8) -> str:
    return f"{prefix}{secrets.token_hex(nbytes)}"


class TTLCache:
    """A tiny per-process cache whose entries expire; used for hot lookups (keys, projects)."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000):
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._data: dict = {}

    def get(self, key):
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    def get_until(self, key) -> tuple:
        """(value, the monotonic time it expires at), or (None, 0) when there is none."""
        entry = self._data.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None, 0
        return entry[1], entry[0]

    def set(self, key, value) -> None:
        if self.ttl <= 0:
            return
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)

    def discard(self, key) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()


def iso_utc(value: datetime) -> str:
    """The one date format of every API response: ISO 8601 in UTC with milliseconds, e.g. 2026-11-25T16:36:46.437Z.

    MongoDB keeps milliseconds, so this is exactly what was stored (and what JavaScript's Date.toISOString gives).
    """
    return as_utc(value).astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RequestIds:
    """Request ids unique across processes without a system call per request: a random prefix, then a counter.

    They only have to tell requests apart in logs, not be unguessable. A fresh prefix after fork keeps granian
    workers apart.
    """

    def __init__(self):
        self._reset()
        if hasattr(os, "register_at_fork"):
            # A weak reference: fork callbacks cannot be unregistered, and apps (in tests, many) must be freeable.
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: ref() and ref()._reset())

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"
