"""Secrets kept in the database are sealed under secrets.encryption_key, independent of jwt.secret."""
import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from baas.push.vapid import b64url
from baas.runtime import load_or_create_encryption_key
from baas.sealing import SealError, Sealer


def test_a_sealed_value_opens_only_under_its_key_and_context():
    sealer = Sealer("k" * 40)
    sealed = sealer.seal(b"private", b"push-vapid/p1/vk_1")
    assert sealed.startswith(f"v1.{sealer.key_id}.") and b"private" not in sealed.encode()
    assert sealer.open(sealed, b"push-vapid/p1/vk_1") == b"private"
    with pytest.raises(SealError):
        sealer.open(sealed, b"push-vapid/p2/vk_1")          # copied to another project's record
    with pytest.raises(SealError):
        Sealer("other" * 8).open(sealed, b"push-vapid/p1/vk_1")
    altered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for bad in (altered, "v1.x.y", "nonsense", "v2." + sealed[3:]):
        with pytest.raises(SealError):
            sealer.open(bad, b"push-vapid/p1/vk_1")


def test_a_changed_encryption_key_still_opens_what_the_previous_one_sealed():
    old = Sealer("old-key-" * 5)
    sealed = old.seal(b"credential", b"ctx")
    new = Sealer("new-key-" * 5, previous_keys=["old-key-" * 5])
    assert new.open(sealed, b"ctx") == b"credential"
    assert new.needs_reseal(sealed) and not new.needs_reseal(new.seal(b"credential", b"ctx"))


def test_the_generated_key_is_made_once_per_data_folder(tmp_path):
    first = load_or_create_encryption_key(tmp_path)
    assert len(first) >= 40 and load_or_create_encryption_key(tmp_path) == first
    assert oct((tmp_path / "encryption.key").stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["encryption.key"]  # no temporary file left


def _legacy_seal(jwt_secret: str, raw: bytes, aad: bytes) -> str:
    """How VAPID private keys were sealed before secrets.encryption_key (under a key derived from jwt.secret)."""
    nonce = os.urandom(12)
    aead = AESGCM(hashlib.sha256(b"baas push vapid key\0" + jwt_secret.encode()).digest())
    return b64url(nonce + aead.encrypt(nonce, raw, aad))


def test_vapid_keys_sealed_under_jwt_secret_are_migrated_and_survive_a_new_jwt_secret(make_app):
    app = make_app({"secrets.encryption_key": "e" * 43})
    svc = app.extensions["baas"]
    keys = svc.extra["push"].keys
    svc.projects.create("legacy-keys")
    doc = keys.ensure("legacy-keys")
    pair = doc["keys"][0]
    aad = f"legacy-keys/{pair['id']}".encode()
    raw = keys._open(pair["sealed"], aad).private_numbers().private_value.to_bytes(32, "big")
    legacy = _legacy_seal(svc.config["jwt"]["secret"], raw, aad)
    keys.collection.update_one({"_id": "legacy-keys"}, {"$set": {"keys": [{**pair, "sealed": legacy}]}})

    assert keys.migrate() >= 1
    stored = keys.collection.find_one({"_id": "legacy-keys"})["keys"][0]["sealed"]
    assert stored.startswith("v1.") and stored != legacy

    # The JWT secret rotated: the key still opens, and is the same key (same public key).
    rotated = make_app({"secrets.encryption_key": "e" * 43, "jwt.secret": "a-brand-new-jwt-secret-" + "z" * 20})
    other = rotated.extensions["baas"].extra["push"].keys
    key_id, private_key = other.private_key("legacy-keys", pair["id"])
    assert key_id == pair["id"]
    assert private_key.private_numbers().private_value.to_bytes(32, "big") == raw


def test_a_process_with_another_encryption_key_is_told_at_once(make_app):
    from baas.config import ConfigError

    make_app({"secrets.encryption_key": "one-key-" * 6})  # its indexes made, as at start-up
    with pytest.raises(ConfigError, match="secrets.encryption_key"):
        make_app({"secrets.encryption_key": "another-key-" * 4})
    # The former key listed as previous: accepted, and the check is sealed again under the new key.
    make_app({"secrets.encryption_key": "another-key-" * 4, "secrets.previous_encryption_keys": ["one-key-" * 6]})
    make_app({"secrets.encryption_key": "another-key-" * 4})
