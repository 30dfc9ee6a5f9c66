"""API keys: client keys (public, always under access rules) and server keys (secret, full access).

Only a SHA-256 of each key is stored: keys are 256-bit random, so a fast hash is as safe as a slow one and
keeps the lookup on every request cheap. Lookups are cached for `keys.cache_seconds`, which bounds how long a
revoked key keeps working on any process.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ASCENDING, ReturnDocument

from baas.errors import Conflict, Invalid, NotFound, Unauthorized
from baas.principal import KEY_KINDS, SCOPES, KeyInfo, ProjectInfo
from baas.storage.mongo import ensure_index
from baas.util import TTLCache, as_utc, new_id, random_token, sha256_hex, utcnow

KEY_PREFIXES = {"client": "baas_ck_", "server": "baas_sk_"}
SHOWN_PREFIX_LENGTH = 14


class KeyService:
    def __init__(self, mongo, projects, cache_seconds: float = 2):
        self.collection = mongo.platform["api_keys"]
        self.projects = projects
        self._cache = TTLCache(cache_seconds)
        projects.on_delete.append(lambda project_id: self._cache.clear())

    def forget_cached(self) -> None:
        """Forget every key this process trusts (after an import replaced a project's keys)."""
        self._cache.clear()

    def ensure_indexes(self) -> None:
        ensure_index(self.collection, [("hash", ASCENDING)], name="hash_unique", unique=True)
        ensure_index(self.collection, [("project_id", ASCENDING), ("created_at", ASCENDING)], name="project_created")

    @staticmethod
    def _check(kind: str, scopes: list | None, expires_at: datetime | None) -> None:
        if kind not in KEY_KINDS:
            raise Invalid(f"Key kind must be one of {', '.join(KEY_KINDS)}.", errors={"kind": ["Unknown kind."]})
        unknown = sorted(set(scopes or ()) - set(SCOPES))
        if unknown:
            raise Invalid(f"Unknown scope(s): {', '.join(unknown)}. Known scopes: {', '.join(SCOPES)}.",
                          errors={"scopes": [f"Unknown scope: {s}" for s in unknown]})
        if expires_at is not None and as_utc(expires_at) <= utcnow():
            raise Invalid("expires_at must be in the future.", errors={"expires_at": ["Must be in the future."]})

    def create(self, project_id: str, kind: str, name: str | None = None, scopes: list | None = None,
               expires_at: datetime | None = None, rotated_from: str | None = None) -> tuple[dict, str]:
        """Return the stored metadata and the plaintext key (the only time it exists)."""
        self.projects.get(project_id)
        self._check(kind, scopes, expires_at)
        plaintext = KEY_PREFIXES[kind] + random_token(32)
        doc = {
            "_id": new_id("key_"),
            "project_id": project_id,
            "kind": kind,
            "name": name or f"{kind} key",
            "scopes": sorted(set(scopes or ())),
            "prefix": plaintext[:SHOWN_PREFIX_LENGTH],
            "hash": sha256_hex(plaintext),
            "created_at": utcnow(),
            "expires_at": as_utc(expires_at),
            "revoked_at": None,
            "rotated_from": rotated_from,
            "rotated_to": None,
        }
        self.collection.insert_one(doc)
        return doc, plaintext

    def list(self, project_id: str) -> list[dict]:
        self.projects.get(project_id)
        return list(self.collection.find({"project_id": project_id}, {"hash": 0}).sort("created_at", ASCENDING))

    def get(self, project_id: str, key_id: str) -> dict:
        doc = self.collection.find_one({"_id": key_id, "project_id": project_id}, {"hash": 0})
        if doc is None:
            raise NotFound(f"No key '{key_id}' in project '{project_id}'.")
        return doc

    def revoke(self, project_id: str, key_id: str) -> dict:
        self.projects.get(project_id)
        # $currentDate rather than $set of a datetime, which nx-27017 (the embedded default) stores as a string.
        doc = self.collection.find_one_and_update(
            {"_id": key_id, "project_id": project_id},
            {"$currentDate": {"revoked_at": True}},
            projection={"hash": 0}, return_document=ReturnDocument.AFTER)
        if doc is None:
            raise NotFound(f"No key '{key_id}' in project '{project_id}'.")
        self._cache.clear()
        return doc

    def rotate(self, project_id: str, key_id: str, grace_seconds: int = 0) -> tuple[dict, str, dict]:
        """Issue a replacement with the same kind, name and scopes; the old key works for `grace_seconds` more.

        Returns (new metadata, new plaintext, old metadata).
        """
        if not isinstance(grace_seconds, int) or grace_seconds < 0 or grace_seconds > 30 * 86400:
            raise Invalid("grace_seconds must be between 0 and 2592000 (30 days).",
                          errors={"grace_seconds": ["Out of range."]})
        self.projects.get(project_id)
        old = self.collection.find_one({"_id": key_id, "project_id": project_id})
        if old is None:
            raise NotFound(f"No key '{key_id}' in project '{project_id}'.")
        if old.get("revoked_at"):
            raise Invalid(f"Key '{key_id}' is revoked and cannot be rotated.")
        new, plaintext = self.create(project_id, old["kind"], old["name"], old["scopes"],
                                     old.get("expires_at") if old.get("expires_at") and
                                     as_utc(old["expires_at"]) > utcnow() else None,
                                     rotated_from=key_id)
        now = utcnow()
        updated = {**old, "rotated_to": new["_id"]}
        if grace_seconds == 0:
            updated["revoked_at"] = now
        else:
            ends = now + timedelta(seconds=grace_seconds)
            current_expiry = as_utc(old.get("expires_at"))
            updated["expires_at"] = min(ends, current_expiry) if current_expiry else ends
        # A whole-document replace guarded by the state we read: a computed expiry cannot go through $set, which
        # nx-27017 (the embedded default) stores as a string, and a concurrent rotate or revoke is not overwritten.
        replaced = self.collection.replace_one(
            {"_id": key_id, "revoked_at": None, "rotated_to": old.get("rotated_to")}, updated)
        self._cache.clear()
        if replaced.matched_count == 0:
            self.collection.delete_one({"_id": new["_id"]})
            raise Conflict(f"Key '{key_id}' was changed meanwhile (revoked or rotated); try again.")
        updated.pop("hash", None)
        new.pop("hash", None)
        return new, plaintext, updated

    def authenticate(self, plaintext: str) -> tuple[ProjectInfo, KeyInfo]:
        """Resolve an X-API-Key value, or raise Unauthorized saying why it is refused."""
        if not plaintext or len(plaintext) > 200:
            raise Unauthorized("Unknown API key.")
        digest = sha256_hex(plaintext)
        cached = self._cache.get(digest)
        if cached is None:
            doc = self.collection.find_one({"hash": digest}, {"hash": 0, "name": 0})
            # The KeyInfo is built once per lookup, not per request; the checks below still run every time.
            cached = (doc, KeyInfo(id=doc["_id"], kind=doc["kind"], scopes=frozenset(doc.get("scopes") or ()))) \
                if doc else (False, None)
            self._cache.set(digest, cached)
        doc, key = cached
        if not doc:
            raise Unauthorized("Unknown API key.")
        # The project comes from its own cache, which an update or delete clears, so settings such as CORS
        # origins and a deletion apply at once in this process (and within cache_seconds in the others).
        try:
            project = self.projects.info(doc["project_id"])
        except NotFound:
            raise Unauthorized("Unknown API key.") from None
        if doc.get("revoked_at"):
            raise Unauthorized("This API key has been revoked.")
        expires_at = doc.get("expires_at")
        if expires_at is not None and as_utc(expires_at) <= utcnow():
            raise Unauthorized("This API key has expired.")
        return project, key
