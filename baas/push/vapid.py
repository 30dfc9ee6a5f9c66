"""Per-project VAPID key pairs (RFC 8292) and the signed tokens that prove them to push services.

Private keys are stored sealed (baas.sealing, under secrets.encryption_key), so a database dump alone cannot
send pushes as the project; no listing ever returns them. Keys sealed by earlier versions under a key derived
from jwt.secret still open with it and are sealed again under the encryption key (`migrate`, run at start-up,
and on first use). Rotation keeps the previous pairs:
subscriptions remember the key they were made with and keep being signed with it until the browser
resubscribes with the new public key.
"""
from __future__ import annotations

import base64
import hashlib
import threading
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from baas.util import new_id, utcnow

KEEP_KEYS = 4                 # current pair + the previous ones still serving older subscriptions
TOKEN_SECONDS = 12 * 3600     # RFC 8292 allows up to 24 h
RENEW_BEFORE_SECONDS = 3600   # a cached token is replaced an hour before it expires


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pair_context(project_id: str, key_id: str) -> bytes:
    """What a pair's private key is sealed to (baas.sealing): a sealed key copied to another pair does not open."""
    return f"{project_id}/{key_id}".encode()


def public_key_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The uncompressed point, URL-safe base64: what pushManager.subscribe takes as applicationServerKey."""
    return b64url(private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                       serialization.PublicFormat.UncompressedPoint))


class VapidKeys:
    """The key pairs of every project, in the platform collection `push_vapid_keys` (one document per project)."""

    def __init__(self, mongo, sealer, legacy_secret: str | None = None):
        self.collection = mongo.platform["push_vapid_keys"]
        self.sealer = sealer                      # baas.sealing.Sealer
        # How keys were sealed before secrets.encryption_key existed: opened only to be sealed again.
        self._legacy = AESGCM(hashlib.sha256(b"baas push vapid key\0" + legacy_secret.encode()).digest()) \
            if legacy_secret else None
        self._private: dict[tuple, ec.EllipticCurvePrivateKey] = {}
        self._lock = threading.Lock()

    def _seal(self, private_key: ec.EllipticCurvePrivateKey, aad: bytes) -> str:
        return self.sealer.seal(private_key.private_numbers().private_value.to_bytes(32, "big"), aad)

    def _open(self, sealed: str, aad: bytes) -> ec.EllipticCurvePrivateKey:
        if self.sealer.is_sealed(sealed) or self._legacy is None:
            raw = self.sealer.open(sealed, aad)
        else:
            sealed_bytes = b64url_decode(sealed)
            raw = self._legacy.decrypt(sealed_bytes[:12], sealed_bytes[12:], aad)
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())

    def reseal(self, doc: dict) -> dict:
        """Seal again, under the current encryption key, the pairs of `doc` that are not; returns the doc."""
        stale = [k for k in doc.get("keys", ()) if self.sealer.needs_reseal(k["sealed"])]
        if not stale:
            return doc
        keys = []
        for pair in doc["keys"]:
            aad = pair_context(doc["_id"], pair["id"])
            if pair in stale:
                pair = {**pair, "sealed": self._seal(self._open(pair["sealed"], aad), aad)}
            keys.append(pair)
        # Guarded by the current pair: a rotation meanwhile wins, and the next use reseals what it kept.
        self.collection.replace_one({"_id": doc["_id"], "current": doc["current"]}, {**doc, "keys": keys})
        return {**doc, "keys": keys}

    def migrate(self) -> int:
        """Seal every stored pair under the current encryption key (legacy jwt-derived or previous keys)."""
        changed = 0
        for doc in self.collection.find({}):
            if "current" in doc and self.reseal(doc) is not doc:
                changed += 1
        return changed

    def _new_pair(self, project_id: str) -> dict:
        private_key = ec.generate_private_key(ec.SECP256R1())
        key_id = new_id("vk_")
        return {"id": key_id, "public_key": public_key_b64(private_key), "created_at": utcnow(),
                "sealed": self._seal(private_key, pair_context(project_id, key_id))}

    def ensure(self, project_id: str) -> dict:
        """The project's key document, creating the first pair when there is none (older projects)."""
        doc = self.collection.find_one({"_id": project_id})
        if doc is None:
            pair = self._new_pair(project_id)
            self.collection.update_one({"_id": project_id},
                                       {"$setOnInsert": {"current": pair["id"], "keys": [pair]}}, upsert=True)
            doc = self.collection.find_one({"_id": project_id})
            if doc is None or "current" not in doc:  # a server that dropped $setOnInsert on upsert
                self.collection.replace_one({"_id": project_id},
                                            {"_id": project_id, "current": pair["id"], "keys": [pair]}, upsert=True)
                doc = self.collection.find_one({"_id": project_id})
        return doc

    def current(self, project_id: str) -> dict:
        """{"id", "public_key", "created_at"} of the pair new subscriptions should use."""
        doc = self.ensure(project_id)
        pair = next(k for k in doc["keys"] if k["id"] == doc["current"])
        return describe(pair, doc)

    def describe_all(self, project_id: str) -> dict:
        doc = self.ensure(project_id)
        current = next(k for k in doc["keys"] if k["id"] == doc["current"])
        return {**describe(current, doc),
                "previous": [describe(k, doc) for k in doc["keys"] if k["id"] != doc["current"]]}

    def rotate(self, project_id: str) -> dict:
        """A new current pair; the previous ones keep signing for the subscriptions made with them."""
        doc = self.ensure(project_id)
        pair = self._new_pair(project_id)
        keys = [pair] + [k for k in doc["keys"]][: KEEP_KEYS - 1]
        # Replace guarded by the current id we read: two concurrent rotations cannot lose a pair silently.
        replaced = self.collection.replace_one({"_id": project_id, "current": doc["current"]},
                                               {"_id": project_id, "current": pair["id"], "keys": keys})
        if replaced.matched_count == 0:
            return self.rotate(project_id)
        return self.describe_all(project_id)

    def private_key(self, project_id: str, key_id: str | None) -> tuple[str, ec.EllipticCurvePrivateKey]:
        """(key id, private key) for signing: the named pair, or the current one when it is gone or unnamed."""
        cache_key = (project_id, key_id)
        with self._lock:
            found = self._private.get(cache_key)
        if found is not None:
            return found
        doc = self.reseal(self.ensure(project_id))
        pair = next((k for k in doc["keys"] if k["id"] == key_id), None) or \
            next(k for k in doc["keys"] if k["id"] == doc["current"])
        found = (pair["id"], self._open(pair["sealed"], pair_context(project_id, pair["id"])))
        with self._lock:
            self._private[cache_key] = found
        return found

    def forget(self, project_id: str) -> None:
        self.collection.delete_one({"_id": project_id})
        with self._lock:
            for key in [k for k in self._private if k[0] == project_id]:
                del self._private[key]


def describe(pair: dict, doc: dict) -> dict:
    return {"id": pair["id"], "public_key": pair["public_key"], "created_at": pair["created_at"],
            "current": pair["id"] == doc["current"]}


class VapidTokens:
    """`Authorization: vapid t=<JWT>, k=<public key>` headers, cached per (project key, push-service origin).

    Signing is the costly part of a delivery; one token per origin serves every subscription there until
    shortly before it expires.
    """

    def __init__(self, keys: VapidKeys, subject: str):
        if not subject.startswith(("mailto:", "https:")):
            raise ValueError("push.vapid_subject must be a mailto: or https: URL")
        self.keys = keys
        self.subject = subject
        self._cache: dict[tuple, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def header(self, project_id: str, key_id: str | None, origin: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        cache_key = (project_id, key_id, origin)
        cached = self._cache.get(cache_key)  # a dict read is atomic; every sender thread passes here
        if cached is not None and cached[1] - RENEW_BEFORE_SECONDS > now:
            return cached[0]
        used_id, private_key = self.keys.private_key(project_id, key_id)
        expires = int(now) + TOKEN_SECONDS
        token = jwt.encode({"aud": origin, "exp": expires, "sub": self.subject}, private_key, algorithm="ES256")
        value = f"vapid t={token}, k={public_key_b64(private_key)}"
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[cache_key] = (value, expires)
        return value
