"""webhooks: POST events as signed JSON to the URLs a project configured, retried with backoff by a job.

Events (`documents.create|replace|update|delete`, `users.signup`, `users.delete`) are queued in the project's
`_webhooks_deliveries` collection by after-hooks (never sent inside the request); the `deliver` job sends them.
Each request carries `X-Baas-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
"""
from __future__ import annotations

import hashlib
import hmac
import time
import uuid

import orjson

from baas.plugins import hookimpl, job
from baas.worker.lease import claim_one
from baas_plugins.webhooks.delivery import SafeSender, TargetRefused

EVENTS = ["documents.create", "documents.replace", "documents.update", "documents.delete", "users.signup",
          "users.delete"]
BACKOFF_SECONDS = [10, 60, 300, 1800, 7200]
BATCH = 50
LEASE_SECONDS = 60
KEEP_SECONDS = 7 * 86400  # delivered and failed deliveries stay this long, for inspection

baas_plugin_settings = {
    "type": "object",
    "additionalProperties": False,
    "required": ["endpoints"],
    "properties": {
        "endpoints": {
            "type": "array", "maxItems": 20,
            "items": {
                "type": "object", "additionalProperties": False, "required": ["url", "secret"],
                "properties": {
                    "url": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
                    "secret": {"type": "string", "minLength": 16, "maxLength": 200},
                    "events": {"type": "array", "items": {"enum": ["*", *EVENTS]}, "default": ["*"]},
                    "collections": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does: recompute the HMAC and refuse old timestamps (replays)."""
    if not header:
        return False
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")


def _enqueue(ctx, event: str, data: dict, collection: str | None = None) -> None:
    endpoints = ctx.settings.get("endpoints") or []
    now = time.time()
    deliveries = []
    for index, endpoint in enumerate(endpoints):
        events = endpoint.get("events") or ["*"]
        if "*" not in events and event not in events:
            continue
        if collection is not None and endpoint.get("collections") and collection not in endpoint["collections"]:
            continue
        deliveries.append({"_id": uuid.uuid4().hex, "endpoint": index, "url": endpoint["url"], "event": event,
                           "payload": orjson.dumps({"event": event, "project": ctx.project_id, "at": now,
                                                    "data": data}, default=str).decode(),
                           "status": "pending", "attempts": 0, "next_attempt": now, "created": now})
    if deliveries:
        ctx.collection("deliveries").insert_many(deliveries)


@hookimpl
def baas_after_document_write(ctx, collection, action, document, previous):
    data = {"collection": collection, "id": (document or previous or {}).get("_id"), "document": document}
    _enqueue(ctx, f"documents.{action}", data, collection)


@hookimpl
def baas_after_user_signup(ctx, user):
    _enqueue(ctx, "users.signup", {"user": user})


@hookimpl
def baas_after_user_delete(ctx, user_id):
    _enqueue(ctx, "users.delete", {"user_id": user_id})


@job(seconds=5)
def deliver(ctx):
    """Send due webhook deliveries; failures are retried with backoff, then given up."""
    endpoints = ctx.settings.get("endpoints") or []
    sender = SafeSender(allow_networks=ctx.config.get("allow_networks", []),
                        timeout=float(ctx.config.get("timeout_seconds", 5)))
    queue = ctx.collection("deliveries")
    now = time.time()
    owner = f"webhooks-{uuid.uuid4().hex[:8]}"
    for _ in range(BATCH):
        # A leased claim: a manual run beside the scheduled one never sends the same delivery twice at once.
        delivery = claim_one(queue, {"status": "pending", "next_attempt": {"$lte": now}}, owner, LEASE_SECONDS)
        if delivery is None:
            break
        endpoint = endpoints[delivery["endpoint"]] if delivery["endpoint"] < len(endpoints) else None
        if endpoint is None or endpoint["url"] != delivery["url"]:
            queue.update_one({"_id": delivery["_id"]}, {"$set": {"status": "dropped",
                                                                 "error": "endpoint no longer configured"}})
            continue
        body = delivery["payload"].encode()
        headers = {"Content-Type": "application/json", "User-Agent": "baas-webhooks",
                   "X-Baas-Event": delivery["event"], "X-Baas-Delivery": delivery["_id"],
                   "X-Baas-Signature": sign(endpoint["secret"], int(time.time()), body)}
        attempts = delivery["attempts"] + 1
        try:
            status = sender.post(delivery["url"], body, headers)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except TargetRefused as exc:
            status, error = None, f"refused: {exc}"
        except OSError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        if error is None:
            queue.update_one({"_id": delivery["_id"]}, {"$set": {"status": "delivered", "attempts": attempts,
                                                                 "response_status": status, "delivered": now}})
            continue
        permanent = error.startswith("refused") or attempts > len(BACKOFF_SECONDS)
        ctx.log.warning("webhook %s to %s failed (attempt %d): %s", delivery["_id"], delivery["url"], attempts,
                        error)
        queue.update_one({"_id": delivery["_id"]}, {"$set": {
            "status": "failed" if permanent else "pending", "attempts": attempts, "error": error,
            "response_status": status,
            "next_attempt": now + (0 if permanent else BACKOFF_SECONDS[attempts - 1]), "lease_until": 0.0}})
    queue.delete_many({"status": {"$in": ["delivered", "failed", "dropped"]}, "created": {"$lt": now - KEEP_SECONDS}})
