"""Leases in MongoDB: whoever holds a lease does the work; a crashed holder's lease runs out and another takes over.

Expiry times are stored as epoch seconds (floats), not datetimes: a number compares the same on every
backend, while the embedded server stores a `$set` datetime as a string.
"""
from __future__ import annotations

import os
import socket
import time
import uuid

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError


def worker_id() -> str:
    """A name for this process that is unique across machines and restarts, readable in run histories."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    """Named leases (one document each) in one collection: `acquire` is atomic on every MongoDB server."""

    def __init__(self, collection):
        self.collection = collection

    def acquire(self, name: str, owner: str, seconds: float, now: float | None = None) -> bool:
        """Take or renew the lease `name` for `seconds`; False while another owner holds it."""
        now = time.time() if now is None else now
        taken = self.collection.update_one(
            {"_id": name, "$or": [{"owner": owner}, {"expires": {"$lt": now}}]},
            {"$set": {"owner": owner, "expires": now + seconds}},
        )
        if taken.matched_count:
            return True
        try:
            self.collection.insert_one({"_id": name, "owner": owner, "expires": now + seconds})
            return True
        except DuplicateKeyError:  # it exists and someone else holds it
            return False

    def release(self, name: str, owner: str) -> None:
        self.collection.update_one({"_id": name, "owner": owner}, {"$set": {"expires": 0.0}})

    def holder(self, name: str, now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        lease = self.collection.find_one({"_id": name})
        return lease["owner"] if lease and lease["expires"] >= now else None


def claim_one(collection, filter: dict, owner: str, seconds: float, now: float | None = None,
              sort: list | None = None) -> dict | None:
    """Atomically take one queue item matching `filter` whose lease is free or expired; returns it, leased.

    Items carry `lease_owner` and `lease_until` (epoch seconds; 0 or missing = free). Finish an item with an
    update whose filter names the owner (see `owned`), so a holder whose lease ran out cannot overwrite the work
    of the process that took over.
    """
    now = time.time() if now is None else now
    query = {"$and": [filter, {"$or": [{"lease_until": {"$lt": now}}, {"lease_until": {"$exists": False}}]}]}
    return collection.find_one_and_update(
        query, {"$set": {"lease_owner": owner, "lease_until": now + seconds}},
        sort=sort, return_document=ReturnDocument.AFTER,
    )


def owned(item_id, owner: str) -> dict:
    """The filter that matches a queue item only while `owner` still holds it."""
    return {"_id": item_id, "lease_owner": owner}
