"""Rate limits shared by every server process: fixed-window counters in MongoDB.

Each (bucket, window) pair is one document whose _id names both, e.g. `key:p1:key_ab|60|1732550400`, so a new
window starts a new counter and no query ever needs to check expiry; `expires_at` (written when the window's
first hit creates the document) lets a TTL index remove spent windows on MongoDB.

Why not flask-limiter with limits' MongoDBStorage: its counters are updated with an aggregation-pipeline
update, which nx-27017 (the embedded database) rejects, and its decorator model keys limits on the request
before the body is parsed, while auth needs per-account keys known only inside the service. `limits` still
parses the rate strings ("10/minute").
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import limits
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from baas.errors import TooManyRequests
from baas.storage.mongo import ensure_index

log = logging.getLogger("baas.ratelimit")


@dataclass(frozen=True)
class Rate:
    amount: int
    seconds: int
    text: str

    @classmethod
    def parse(cls, text: str) -> "Rate":
        item = limits.parse(text)
        return cls(amount=item.amount, seconds=item.get_expiry(), text=text)


def client_ip(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The caller's address: with N trusted proxies, the N-th X-Forwarded-For entry from the right.

    Entries further left were written by the client itself and are not believed.
    """
    if trusted_proxies > 0 and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies][:64]
    return remote_addr or "unknown"


class RateLimiter:
    # Spent windows are removed by the TTL index on MongoDB; servers without TTL (nx-27017) get an occasional sweep.
    SWEEP_PROBABILITY = 0.001

    def __init__(self, mongo, enabled: bool = True, api_per_key: str = "6000/minute",
                 auth_per_ip: str = "10/minute", auth_per_account: str = "10/minute"):
        self.collection = mongo.platform["rate_limits"]
        self.enabled = enabled
        self.api_per_key = Rate.parse(api_per_key)
        self.auth_per_ip = Rate.parse(auth_per_ip)
        self.auth_per_account = Rate.parse(auth_per_account)
        self._local: dict = {}
        self._local_lock = threading.Lock()

    @classmethod
    def from_config(cls, mongo, config: dict) -> "RateLimiter":
        section = config["rate_limits"]
        return cls(mongo, section["enabled"], section["api_per_key"], section["auth_per_ip"],
                   section["auth_per_account"])

    def ensure_indexes(self) -> None:
        ensure_index(self.collection, [("expires_at", ASCENDING)], name="expires_ttl", expireAfterSeconds=0)

    @staticmethod
    def _window(bucket: str, rate: Rate, now: float) -> tuple[str, int]:
        """The counter id of the window `now` falls in, and when that window ends."""
        window_start = int(now // rate.seconds * rate.seconds)
        return f"{bucket}|{rate.seconds}|{window_start}", window_start + rate.seconds

    @staticmethod
    def _refuse(message: str, window_end: int, now: float) -> TooManyRequests:
        return TooManyRequests(message, retry_after=max(1, int(window_end - now + 0.999)))

    def hit(self, bucket: str, rate: Rate, message: str) -> None:
        """Count one hit in `bucket`; raise TooManyRequests when this window already had `rate.amount`."""
        if not self.enabled:
            return
        now = time.time()
        doc_id, window_end = self._window(bucket, rate, now)
        if self._increment(doc_id, window_end) > rate.amount:
            raise self._refuse(message, window_end, now)
        if random.random() < self.SWEEP_PROBABILITY:
            self.sweep()

    def hit_batched(self, bucket: str, rate: Rate, message: str) -> None:
        """Like hit(), for high-volume limits: counts locally and adds them to MongoDB in batches.

        A write per request would double the cost of every API call. Each process adds its hits to the shared
        counter every `flush_every` hits (1% of the limit) or once a second, whichever comes first, so the
        limit holds across processes to within processes x flush_every hits; limits under 100 per window are
        counted exactly, one write per hit.
        """
        if not self.enabled:
            return
        flush_every = max(1, rate.amount // 100)
        if flush_every == 1:
            return self.hit(bucket, rate, message)
        now = time.time()
        doc_id, window_end = self._window(bucket, rate, now)
        with self._local_lock:
            state = self._local.get(bucket)
            if state is None or state[0] != doc_id:
                state = self._local[bucket] = [doc_id, 0, 0, now]  # doc id, shared count, pending, last flush
            state[2] += 1
            flush = state[2] >= flush_every or now - state[3] >= 1.0
            pending = state[2]
            if flush:
                state[2] = 0
                state[3] = now
        if flush:
            shared = self._increment(doc_id, window_end, pending)
            with self._local_lock:
                if state[0] == doc_id:
                    state[1] = shared
        if state[1] + state[2] > rate.amount:
            raise self._refuse(message, window_end, now)

    def _increment(self, doc_id: str, window_end: int, amount: int = 1) -> int:
        # One round trip per hit once the window exists; the first hit also writes expires_at, which is done
        # with insert_one because upserts would lose it on nx-27017.
        for _ in range(3):
            doc = self.collection.find_one_and_update({"_id": doc_id}, {"$inc": {"count": amount}},
                                                      projection={"count": 1}, return_document=ReturnDocument.AFTER)
            if doc is not None:
                return int(doc["count"])
            try:
                self.collection.insert_one({"_id": doc_id, "count": amount,
                                            "expires_at": datetime.fromtimestamp(window_end, timezone.utc)})
                return amount
            except DuplicateKeyError:
                continue  # another process created it first; count on it
        raise RuntimeError(f"rate limit counter {doc_id} could not be updated")

    def sweep(self) -> None:
        try:
            self.collection.delete_many({"expires_at": {"$lt": datetime.now(timezone.utc) - timedelta(seconds=5)}})
        except Exception:  # housekeeping must never fail a request
            log.exception("sweeping spent rate-limit windows failed")

    # The calls the rest of baas makes.

    def hit_api_key(self, project_id: str, key_id: str) -> None:
        self.hit_batched(f"key:{project_id}:{key_id}", self.api_per_key,
                         f"This API key exceeded its limit of {self.api_per_key.text}; retry later.")

    def hit_auth(self, project_id: str, action: str, ip: str, account: str | None = None) -> None:
        """Per client IP and, when known, per account (an email hash or user id) on one auth action."""
        self.hit(f"auth:{project_id}:{action}:ip:{ip}", self.auth_per_ip,
                 f"Too many {action} requests from this address (limit {self.auth_per_ip.text}); retry later.")
        if account:
            self.hit(f"auth:{project_id}:{action}:acct:{account}", self.auth_per_account,
                     f"Too many {action} requests for this account (limit {self.auth_per_account.text}); "
                     f"retry later.")
