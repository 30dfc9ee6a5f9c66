"""Platform admin tokens: a fixed one from config, or generated ones stored as hashes in MongoDB."""
from __future__ import annotations

import hmac

from pymongo import ASCENDING

from baas.errors import Unauthorized
from baas.storage.mongo import ensure_index
from baas.util import TTLCache, new_id, random_token, sha256_hex, utcnow


class AdminTokens:
    def __init__(self, mongo, configured_token: str | None, cache_seconds: float = 2):
        self.collection = mongo.platform["admin_tokens"]
        self.configured_token = configured_token
        self._cache = TTLCache(cache_seconds)

    def ensure_indexes(self) -> None:
        ensure_index(self.collection, [("hash", ASCENDING)], name="hash_unique", unique=True)

    def create(self, name: str = "admin") -> str:
        token = "baas_at_" + random_token(32)
        self.collection.insert_one({"_id": new_id("adm_"), "name": name, "hash": sha256_hex(token),
                                    "created_at": utcnow()})
        return token

    def revoke_all(self) -> int:
        self._cache.clear()
        return self.collection.delete_many({}).deleted_count

    def count(self) -> int:
        return self.collection.count_documents({})

    def verify(self, token: str | None) -> None:
        if not token:
            raise Unauthorized("The admin API needs 'Authorization: Bearer <admin token>'.")
        if self.configured_token and hmac.compare_digest(token.encode(), self.configured_token.encode()):
            return
        digest = sha256_hex(token)
        known = self._cache.get(digest)
        if known is None:
            known = self.collection.find_one({"hash": digest}, {"_id": 1}) is not None
            self._cache.set(digest, known)
        if not known:
            raise Unauthorized("Invalid admin token.")
