"""Sealing secrets that baas keeps in the database (VAPID private keys, push provider credentials, ...).

A sealed value is AES-256-GCM under a key derived from `secrets.encryption_key`, bound to a context (what it is
and whose: e.g. b"push-vapid/<project>/<key id>"), so a sealed value copied to another record does not open.
The key is its own setting, not jwt.secret: rotating the token signing secret must not make stored keys
unreadable. To change the encryption key, set the new one and move the old one to
`secrets.previous_encryption_keys`: values sealed under it still open, and `needs_reseal` tells the owner of a
value to seal it again under the current key.

    sealer = services.sealer                  # one per process, built by create_app
    text = sealer.seal(raw_bytes, b"push-fcm/<project>")
    raw_bytes = sealer.open(text, b"push-fcm/<project>")   # SealError when it does not open
"""
from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo.errors import DuplicateKeyError

from baas.config import ConfigError

PREFIX = "v1"
CHECK_ID = "sealing_check"     # in the platform `meta` collection


class SealError(Exception):
    """A sealed value that does not open: unknown key, another context, or altered text."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: str) -> tuple[str, AESGCM]:
    digest = hashlib.sha256(b"baas sealing key\0" + secret.encode()).digest()
    key_id = hashlib.sha256(b"baas sealing key id\0" + digest).hexdigest()[:8]
    return key_id, AESGCM(digest)


class Sealer:
    def __init__(self, key: str, previous_keys=()):
        if not key:
            raise ValueError("secrets.encryption_key is empty")
        self.key_id, self._current = _derive(key)
        self._keys = dict(_derive(k) for k in previous_keys if k)
        self._keys[self.key_id] = self._current

    def seal(self, plaintext: bytes, context: bytes) -> str:
        """Text (`v1.<key id>.<nonce + ciphertext>`): stored the same on every MongoDB server."""
        nonce = os.urandom(12)
        return f"{PREFIX}.{self.key_id}.{_b64(nonce + self._current.encrypt(nonce, plaintext, context))}"

    def open(self, sealed: str, context: bytes) -> bytes:
        try:
            prefix, key_id, body = sealed.split(".")
            key = self._keys[key_id] if prefix == PREFIX else None
            raw = _unb64(body)
        except (AttributeError, ValueError, KeyError):
            raise SealError("sealed under an unknown key (is secrets.encryption_key the one it was sealed "
                            "with, or listed in secrets.previous_encryption_keys?)") from None
        if key is None or len(raw) < 28:
            raise SealError("not a sealed value")
        try:
            return key.decrypt(raw[:12], raw[12:], context)
        except InvalidTag:
            raise SealError("the sealed value does not open under its key and context") from None

    def is_sealed(self, value) -> bool:
        return isinstance(value, str) and value.startswith(PREFIX + ".") and value.count(".") == 2

    def needs_reseal(self, sealed: str) -> bool:
        """True when `sealed` is not under the current key (seal it again after opening it)."""
        return not (self.is_sealed(sealed) and sealed.split(".")[1] == self.key_id)


def verify_shared_key(meta, sealer: Sealer) -> None:
    """Fail (ConfigError) when this process's encryption key is not the one the database's values are sealed with.

    Processes that each generated a key into their own data folder (an API and a worker on separate volumes)
    would otherwise fail on every sealed value they read; one check value in the platform `meta` collection
    makes the first of them say so plainly. A check made under a previous key is sealed again under the
    current one.
    """
    found = meta.find_one({"_id": CHECK_ID})
    if found is None:
        try:
            meta.insert_one({"_id": CHECK_ID, "sealed": sealer.seal(b"baas", CHECK_ID.encode())})
        except DuplicateKeyError:  # another process made it first
            pass
        found = meta.find_one({"_id": CHECK_ID})
    try:
        sealer.open(found["sealed"], CHECK_ID.encode())
    except SealError:
        raise ConfigError("secrets.encryption_key differs from the key the values in this database were sealed "
                        "with: give every process that shares the database the same secrets.encryption_key "
                        "(the former one in secrets.previous_encryption_keys when changing it)") from None
    if sealer.needs_reseal(found["sealed"]):
        meta.update_one({"_id": CHECK_ID, "sealed": found["sealed"]},
                        {"$set": {"sealed": sealer.seal(b"baas", CHECK_ID.encode())}})
