"""The delivery pipeline: workers claim due items of the platform `push_queue` and work them off.

A "plan" item (one per message, due at its send_at) reads the audience a page at a time, keyset-paginated by
_id so a worker that takes over after a crash resumes where the last saved page ended, and writes "batch" items
with deterministic ids (a page written twice is refused by the unique _id, not delivered twice). A batch item
holds up to push.batch_size subscriptions; its worker keeps up to push.senders of them in flight (Web Push on
its provider's event loop, APNs as streams of one connection, FCM on push.sender_threads threads).

Progress is saved as it happens, in small writes on the batch item: each write records the outcomes known so
far and names the deliveries allowed to start next (`inflight`), renewing the lease. A sender starts only what
a saved write allowed, and the allowed-but-unrecorded set never exceeds push.senders. So a worker that takes
over a batch after its holder died knows exactly what was never started (sent now) and what may have been on
the wire at the kill (at most push.senders deliveries): those are recorded "unconfirmed" and not resent
(at-most-once), unless push.resend_unconfirmed asks for at-least-once.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import random
import threading
import time

import orjson
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from baas.auth.service import USERS
from baas.push.providers import FAILED, REMOVED, RETRY, SENT, OutgoingMessage, Outcome
from baas.push.service import UNCONFIRMED, compile_user_filter, decode_results
from baas.util import TTLCache
from baas.worker.lease import Leases, claim_one, owned, worker_id

log = logging.getLogger("baas.push")

UNCONFIRMED_REASON = "its worker stopped while the request was in flight: it may have arrived; not resent"
ROUND_SECONDS = 5.0           # one run_once works at most this long, so the runner can notice a stop
FLUSH_SECONDS = 0.2           # a known outcome waits at most this long to be saved
RETENTION_EVERY_SECONDS = 3600
TIMING_ENV = "BAAS_PUSH_TIMING"  # a file: one JSON line per batch of where its time went (benchmarks/push.py --timing)


def _chunks(iterable, size: int):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def decode_targets(stored: dict) -> list:
    """The subscriptions of a push_targets document (JSON text, see `_queue_batch`; a list when older)."""
    items = stored["items"]
    return orjson.loads(items) if isinstance(items, str) else items


def encode(results: list) -> list:
    # Results are pushed as JSON text: the embedded server stores pushed objects as strings anyway, so one
    # encoding reads the same on MongoDB and on it.
    return [orjson.dumps(result).decode() for result in results]


class PhaseTimes:
    """Seconds per phase of one batch, for finding what a batch waits on (not CPU: a profile shows that).

    `mark(phase)` books the time since the previous mark to `phase`; `inflight` integrates the window's
    occupancy over the waits, which shows whether the connection was kept full or drained between hand-overs.
    """
    __slots__ = ("path", "phases", "at", "started", "inflight_seconds")

    def __init__(self, path: str, claimed: float = 0.0):
        self.path = path
        self.phases = {"claim": claimed} if claimed else {}
        self.at = self.started = time.perf_counter()
        self.inflight_seconds = 0.0

    def mark(self, phase: str, running: int = 0) -> None:
        now = time.perf_counter()
        spent = now - self.at
        self.phases[phase] = self.phases.get(phase, 0.0) + spent
        self.inflight_seconds += running * spent
        self.at = now

    def write(self, **extra) -> None:
        wall = time.perf_counter() - self.started
        line = {**extra, "seconds": round(wall, 5), "mean_inflight": round(self.inflight_seconds / wall, 1) if wall
                else 0.0, "phases": {k: round(v, 5) for k, v in self.phases.items()}}
        try:
            with open(self.path, "ab") as out:   # one write per line: several workers may share the file
                out.write(orjson.dumps(line) + b"\n")
        except OSError:
            log.exception("cannot write push timing to %s", self.path)


# Delivery outcomes as /metrics names them.
METRIC_OUTCOMES = {SENT: "delivered", REMOVED: "expired", FAILED: "failed", RETRY: "retried",
                   UNCONFIRMED: "unconfirmed"}


class SenderPool:
    """`size` threads, each sending one group of deliveries at a time (one delivery, or several that a provider
    sends together) and putting the group's [(target, outcome), ...] on the caller's queue.

    Plain threads on a SimpleQueue rather than an executor: no future per delivery, one hand-off each way.
    """

    def __init__(self, size: int, send):
        self.size = size
        self.send = send
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, project_id: str, targets: list, message, replies: queue.SimpleQueue) -> None:
        if len(self._threads) < self.size:
            with self._lock:
                while len(self._threads) < self.size:
                    thread = threading.Thread(target=self._run, name=f"baas-push-send-{len(self._threads)}",
                                              daemon=True)
                    thread.start()
                    self._threads.append(thread)
        self._tasks.put((project_id, targets, message, replies))

    def _run(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            project_id, targets, message, replies = task
            replies.put(list(zip(targets, self.send(project_id, targets, message))))

    def close(self, timeout: float = 15.0) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._tasks.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class PushDelivery:
    """The background runner of push (see baas.worker): `run_once(now)` works off whatever is due."""
    name = "push-delivery"

    def __init__(self, service, providers: dict, config: dict, owner: str | None = None, metrics=None):
        self.service = service
        self.metrics = metrics                    # baas.observability.metrics.Metrics, or None
        self.providers = providers                # provider name -> baas.push.providers.Provider
        self.config = config["push"]
        self.interval = self.config["poll_seconds"]
        self.owner = owner or worker_id()
        self.queue = service.queue
        self.targets = service.targets
        self.leases = Leases(service.mongo.platform["push_leases"])
        self.lease_seconds = self.config["lease_seconds"]
        # Deliveries allowed in flight at once (the window of a batch), whatever the provider: one with
        # `start_many` (Web Push) carries them all on its event loop; one that sends a delivery per thread (FCM)
        # works them off sender_threads at a time, the rest waiting in the pool's queue. A kill leaves the whole
        # window "unconfirmed" either way, and a window wider than the threads keeps progress writes rare.
        self.window = self.config["senders"]
        self.senders = SenderPool(min(self.window, self.config["sender_threads"]), self._send_group)
        self._messages = TTLCache(60)
        self._last_retention = 0.0
        self._timing_path = os.environ.get(TIMING_ENV) or None
        self._claim_seconds = 0.0

    def close(self) -> None:
        self.senders.close()
        for provider in self.providers.values():
            provider.close()

    # ---- the loop

    def run_once(self, now: float | None = None) -> int:
        """Work off due items for up to ROUND_SECONDS; returns how many were finished."""
        started = time.monotonic()
        finished = 0
        while time.monotonic() - started < ROUND_SECONDS:
            claiming = time.perf_counter()
            item = claim_one(self.queue, {"state": "pending", "due": {"$lte": time.time()}}, self.owner,
                             self.lease_seconds, sort=[("due", ASCENDING)])
            self._claim_seconds = time.perf_counter() - claiming
            if item is None:
                break
            try:
                if item["kind"] == "plan":
                    self.plan(item)
                else:
                    self.deliver(item)
            except Exception:
                # The lease runs out and another round (here or elsewhere) takes the item over.
                log.exception("push queue item %s failed", item["_id"])
                continue
            finished += 1
        if time.time() - self._last_retention > RETENTION_EVERY_SECONDS:
            self._last_retention = time.time()
            self.sweep_retention()
        return finished

    def drain(self, timeout: float = 30.0) -> None:
        """Run rounds until nothing is due (for tests and the CLI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run_once() and self.queue.find_one({"state": "pending", "due": {"$lte": time.time()}}) is None:
                return
        raise TimeoutError("push work still due after the timeout")

    def _renew(self, item_id: str, changes: dict | None = None, extra: dict | None = None) -> bool:
        """Save progress while this worker still holds the item (and it was not cancelled)."""
        update = {"$set": {**(changes or {}), "lease_until": time.time() + self.lease_seconds}}
        if extra:
            update.update(extra)
        return self.queue.update_one({**owned(item_id, self.owner), "state": "pending"}, update).matched_count == 1

    def _finish(self, item_id: str, state: str = "done", extra: dict | None = None) -> bool:
        update = {"$set": {"state": state, "lease_until": 0.0, "finished_ts": time.time(), "inflight": []}}
        if extra:
            update.update(extra)
        return self.queue.update_one({**owned(item_id, self.owner), "state": "pending"},
                                     update).matched_count == 1

    # ---- planning: audience -> batches

    def _pages(self, project_id: str, audience: dict, after, providers: list | None = None):
        """Yield (subscriptions, resume_after) pages of push.batch_size; resume_after is None after the last page.

        One cursor streams the audience in _id order (one query, never the whole audience in memory); a worker
        taking over a half-planned message opens it again after the last saved id.
        """
        size = self.config["batch_size"]
        subscriptions = self.service.subscriptions(project_id)
        # Whole documents, no projection: a subscription is small, and the embedded nx-27017 spends more CPU
        # applying a projection (8.8 ms per page of 200) than sending the whole documents (5.2 ms).
        fields = None

        def after_saved(query):
            return {"$and": [query, {"_id": {"$gt": after}}]} if after is not None else query

        # A message limited to some providers ("providers": ["apns"]) plans only their devices.
        only = {"provider": {"$in": providers}} if providers else None

        if "filter" in audience:
            users = self.service.mongo.project_db(project_id)[USERS]
            compiled = compile_user_filter(orjson.loads(audience["filter"]))
            cursor = users.find(after_saved(compiled), {"_id": 1}).sort("_id", ASCENDING).batch_size(size)
            for ids in _chunks((u["_id"] for u in cursor), size):
                query = {"user_id": {"$in": ids}}
                found = list(subscriptions.find({"$and": [query, only]} if only else query, fields)
                             .sort("_id", ASCENDING))
                yield found, ids[-1]
            yield [], None
            return
        if "users" in audience:
            base = {"user_id": {"$in": audience["users"]}}
        elif "topics" in audience:
            base = {"topics": {"$in": audience["topics"]}}
        else:
            base = {}
        if only:
            base = {"$and": [base, only]} if base else only
        cursor = subscriptions.find(after_saved(base), fields).sort("_id", ASCENDING).batch_size(size)
        for found in _chunks(cursor, size):
            yield found, found[-1]["_id"]
        yield [], None

    def plan(self, item: dict) -> None:
        project_id, message_id = item["project_id"], item["message_id"]
        timing = PhaseTimes(self._timing_path, self._claim_seconds) if self._timing_path else None
        messages = self.service.messages(project_id)
        message = messages.find_one({"_id": message_id}, {"audience": 1, "status": 1, "providers": 1})
        if message is None or message["status"] == "cancelled":
            self._finish(item["_id"], "cancelled")
            return
        messages.update_one({"_id": message_id, "status": "queued"},
                            {"$set": {"status": "sending"}, "$currentDate": {"started_at": True}})
        size = self.config["batch_size"]
        page, total, after = item.get("page", 0), item.get("total", 0), item.get("after")
        if after is not None or page == 0:
            for found, after in self._pages(project_id, message["audience"], after, message.get("providers")):
                found = self._drop_expired(project_id, found)
                for index in range(0, len(found), size):
                    chunk = found[index:index + size]
                    # Deterministic ids: a page written again after a crash is refused, not delivered twice.
                    self._queue_batch(item, f"{message_id}:{page}:{index // size}", time.time(), 1,
                                      [{"id": s["_id"], "endpoint": s["endpoint"], "keys": s.get("keys"),
                                        "vapid_key": s.get("vapid_key"), "provider": s.get("provider", "webpush")}
                                       for s in chunk])
                page += 1
                total += len(found)
                if not self._renew(item["_id"], {"after": after, "page": page, "total": total}):
                    return  # cancelled, or the lease ran out and someone else plans on
                if after is None:
                    break
        messages.update_one({"_id": message_id}, {"$set": {"planned": True, "total": total}})
        self._finish(item["_id"])
        self._maybe_done(project_id, message_id)
        if timing:
            timing.mark("plan")
            timing.write(item=item["_id"], deliveries=0)

    def _drop_expired(self, project_id: str, found: list) -> list:
        """Subscriptions past the expirationTime the browser gave cannot receive anything: they go."""
        now_ms = time.time() * 1000
        expired = [s["_id"] for s in found if (s.get("expiration_time") or now_ms + 1) <= now_ms]
        if expired:
            self.service.subscriptions(project_id).delete_many({"_id": {"$in": expired}})
            found = [s for s in found if s["_id"] not in set(expired)]
        return found

    def _maybe_done(self, project_id: str, message_id: str) -> None:
        # Called after this worker's own item is marked done, so the last finisher always sees nothing pending.
        if self.queue.find_one({"message_id": message_id, "project_id": project_id, "state": "pending"},
                               {"_id": 1}) is None:
            self.service.messages(project_id).update_one(
                {"_id": message_id, "status": "sending", "planned": True},
                {"$set": {"status": "done"}, "$currentDate": {"finished_at": True}})

    # ---- delivery of one batch

    def _outgoing(self, project_id: str, message_id: str) -> OutgoingMessage | None:
        key = (project_id, message_id)
        found = self._messages.get(key)
        if found is None:
            doc = self.service.messages(project_id).find_one({"_id": message_id},
                                                             {"payload": 1, "ttl": 1, "urgency": 1, "topic": 1,
                                                              "native": 1})
            if doc is None:
                return None
            found = OutgoingMessage(doc["payload"].encode(), doc["ttl"], doc["urgency"], doc.get("topic"),
                                    doc.get("native"))
            self._messages.set(key, found)
        return found

    def _send_one(self, project_id: str, target: dict, message: OutgoingMessage) -> Outcome:
        provider = self.providers.get(target.get("provider", "webpush"))
        if provider is None:
            return Outcome(FAILED, None, f"no provider '{target.get('provider')}' configured")
        try:
            return provider.send(project_id, target, message)
        except Exception as exc:  # a provider bug fails one delivery, never the batch
            log.exception("push provider %s failed", provider.name)
            return Outcome(FAILED, None, f"provider error: {type(exc).__name__}")

    def _send_group(self, project_id: str, targets: list, message: OutgoingMessage) -> list[Outcome]:
        """Outcomes in order of `targets`: one delivery, or several for one provider that has `send_many`."""
        if len(targets) == 1:
            return [self._send_one(project_id, targets[0], message)]
        provider = self.providers[targets[0].get("provider", "webpush")]
        try:
            return provider.send_many(project_id, targets, message)
        except Exception as exc:  # a provider bug fails its deliveries, never the batch
            log.exception("push provider %s failed", provider.name)
            return [Outcome(FAILED, None, f"provider error: {type(exc).__name__}")] * len(targets)

    def _groups(self, targets: list):
        """The hand-off units: all of the deliveries allowed to start at once of a provider with `start_many`
        (Web Push: its event loop sends them concurrently) or `send_many` (APNs: streams multiplexed on one
        HTTP/2 connection, one hand-over to its loop) go together; any other delivery goes alone to a sender
        thread. Yields (provider or None, targets): a provider when it takes the group itself."""
        together: dict[str, list] = {}
        for target in targets:
            name = target.get("provider", "webpush")
            provider = self.providers.get(name)
            if hasattr(provider, "start_many") or hasattr(provider, "send_many"):
                together.setdefault(name, []).append(target)
            else:
                yield None, [target]
        for name, group in together.items():
            provider = self.providers[name]
            yield (provider if hasattr(provider, "start_many") else None), group

    def _start(self, provider, project_id: str, group: list, message, replies: queue.SimpleQueue) -> None:
        if provider is None:
            self.senders.submit(project_id, group, message, replies)
            return
        try:
            provider.start_many(project_id, group, message, replies.put)
        except Exception as exc:  # a provider bug fails its deliveries, never the batch
            log.exception("push provider %s failed", provider.name)
            replies.put([(target, Outcome(FAILED, None, f"provider error: {type(exc).__name__}"))
                         for target in group])

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        cap = self.config["retry_max_seconds"]
        backoff = min(cap, self.config["retry_base_seconds"] * 2 ** (attempt - 1))
        delay = backoff * random.uniform(0.5, 1.0)  # jitter: retries of a failed push service do not stampede
        if retry_after is not None:
            delay = max(delay, min(cap, retry_after))
        return delay

    def _result(self, target: dict, outcome: Outcome, attempt: int) -> tuple[dict, bool]:
        """The recorded result of one send, and whether it is to be tried again."""
        kind, reason, again = outcome.kind, outcome.reason, False
        if kind == RETRY:
            if attempt >= self.config["max_attempts"]:
                kind, reason = FAILED, f"{reason} (gave up after {attempt} attempts)"
            else:
                again = True
        if self.metrics is not None:
            self.metrics.push_delivery(METRIC_OUTCOMES[kind])  # RETRY here: tried again later
        return {"id": target["id"], "outcome": kind, "status": outcome.status, "reason": reason,
                "attempt": attempt}, again

    def deliver(self, item: dict) -> None:
        project_id, message_id, attempt = item["project_id"], item["message_id"], item.get("attempt", 1)
        timing = PhaseTimes(self._timing_path, self._claim_seconds) if self._timing_path else None
        message = self._outgoing(project_id, message_id)
        if message is None:
            self._finish(item["_id"], "cancelled")
            return
        stored = self.targets.find_one({"_id": item["_id"]}, {"items": 1})
        if stored is None:  # finished meanwhile by a holder whose lease had run out
            self._finish(item["_id"])
            return
        targets = decode_targets(stored)
        previous = decode_results(item)
        recorded = {r["id"] for r in previous}
        # Retries a dead holder had recorded but not yet queued (the retry item's id makes queuing them idempotent).
        again_ids = {r["id"] for r in previous if r["outcome"] == RETRY}
        retry = [target for target in targets if target["id"] in again_ids]
        delay = self._retry_delay(attempt, None) if retry else 0.0
        unconfirmed = [i for i in item.get("inflight") or () if i not in recorded]
        if unconfirmed and not self.config["resend_unconfirmed"]:
            results = [{"id": i, "outcome": UNCONFIRMED, "status": None, "reason": UNCONFIRMED_REASON,
                        "attempt": attempt} for i in unconfirmed]
            if not self._renew(item["_id"], {"inflight": []}, {"$push": {"results": {"$each": encode(results)}}}):
                return
            if self.metrics is not None:
                for _ in unconfirmed:
                    self.metrics.push_delivery(METRIC_OUTCOMES[UNCONFIRMED])
            recorded.update(unconfirmed)
        todo = iter([target for target in targets if target["id"] not in recorded])
        window = self.window
        flush_at = max(1, window // 2)
        renew_every = self.lease_seconds / 3
        replies: queue.SimpleQueue = queue.SimpleQueue()
        running: dict[str, dict] = {}      # started and not answered
        done: list[dict] = []              # answered, not saved yet
        removed: list[str] = []
        # Invariant: len(running) + len(done) <= window, and everything running was named in a saved write.
        starting = list(itertools.islice(todo, window))
        if timing:
            timing.mark("read")
        if starting and not self._renew(item["_id"], {"inflight": [t["id"] for t in starting]}):
            return  # cancelled, or taken over after our lease ran out
        if timing:
            timing.mark("save")
        saved_at = time.monotonic()
        finished = False
        while starting or running:
            for provider, group in self._groups(starting):
                for target in group:
                    running[target["id"]] = target
                self._start(provider, project_id, group, message, replies)
            starting = []
            if timing:
                timing.mark("start")
            answers = []  # none within FLUSH_SECONDS (a slow push service): save progress and renew all the same
            try:
                answers += replies.get(timeout=FLUSH_SECONDS)
                while True:
                    answers += replies.get_nowait()
            except queue.Empty:
                pass
            if timing:
                timing.mark("wait", len(running))
            for target, outcome in answers:
                del running[target["id"]]
                result, again = self._result(target, outcome, attempt)
                done.append(result)
                if again:
                    retry.append(target)
                    delay = max(delay, self._retry_delay(attempt, outcome.retry_after))
                elif result["outcome"] == REMOVED:
                    removed.append(target["id"])
            if timing:
                timing.mark("answers", len(running))
            waited = time.monotonic() - saved_at
            if len(done) >= flush_at or (done and (not running or waited >= FLUSH_SECONDS)) \
                    or waited >= renew_every:
                # One write: the outcomes known so far, and the next deliveries allowed to start in their place.
                starting = list(itertools.islice(todo, window - len(running)))
                extra = {"$push": {"results": {"$each": encode(done)}}} if done else None
                if not running and not starting and not retry:
                    # The last outcomes and the end of the item in one write (with retries to queue, the item
                    # ends only after they are queued, so a taker can queue what a dead holder had not).
                    finished = self._finish(item["_id"], extra=extra)
                    if not finished:
                        return
                elif not self._renew(item["_id"], {"inflight": [*running, *(t["id"] for t in starting)]}, extra):
                    return
                saved_at = time.monotonic()
                done = []
                if removed:
                    # The push service says the device is gone (404/410): the subscription goes too.
                    self.service.subscriptions(project_id).delete_many({"_id": {"$in": removed}})
                    removed = []
                if timing:
                    timing.mark("save", len(running))
        if retry:
            self._queue_batch(item, f"{item['_id']}:r{attempt}", time.time() + delay, attempt + 1, retry)
        if finished or self._finish(item["_id"]):
            self.targets.delete_one({"_id": item["_id"]})  # results keep the ids; the keys are not needed again
            self._maybe_done(project_id, message_id)
        if timing:
            timing.mark("end")
            timing.write(item=item["_id"], deliveries=len(targets))

    def _queue_batch(self, source: dict, batch_id: str, due: float, attempt: int, targets: list) -> None:
        """Queue a batch: its targets first (in push_targets), then the small queue item that workers claim.

        The targets (endpoint and keys, the bulk of a batch) stay out of the queue item, so the claims and the
        frequent progress writes read and rewrite a small document. Both writes are idempotent by id.
        """
        try:
            # One JSON text rather than 200 subdocuments: a server that stores documents as JSON (the embedded
            # nx-27017) writes and reads it ~6x cheaper, and on MongoDB one string costs no more than the objects.
            self.targets.insert_one({"_id": batch_id, "project_id": source["project_id"],
                                     "items": orjson.dumps(targets).decode(), "written_ts": time.time()})
        except DuplicateKeyError:
            pass
        try:
            self.queue.insert_one({"_id": batch_id, "kind": "batch", "project_id": source["project_id"],
                                   "message_id": source["message_id"], "state": "pending", "due": due,
                                   "attempt": attempt, "created_ts": source["created_ts"], "results": [],
                                   "inflight": []})
        except DuplicateKeyError:
            pass  # written by a holder before it crashed

    # ---- retention

    def sweep_retention(self, now: float | None = None) -> int:
        """Delete messages and queue items older than push.retention_days (one worker at a time)."""
        now = time.time() if now is None else now
        if not self.leases.acquire("push-retention", self.owner, 600, now):
            return 0
        cutoff = now - self.config["retention_days"] * 86400
        removed = self.queue.delete_many({"created_ts": {"$lt": cutoff}, "state": {"$ne": "pending"}}).deleted_count
        self.targets.delete_many({"written_ts": {"$lt": cutoff}})  # of cancelled batches
        for project in self.service.projects.list():
            removed += self.service.messages(project["_id"]).delete_many(
                {"created_ts": {"$lt": cutoff}, "status": {"$in": ["done", "cancelled"]}}).deleted_count
        return removed
