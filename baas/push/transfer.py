"""Project export/import (baas.projects.transfer) of a project's VAPID key pairs.

Browsers bind each push subscription to the applicationServerKey it was made with, so an imported project must
sign with the same pairs or every subscription would stop working. The private keys are sealed (baas.sealing,
under secrets.encryption_key) to the project id and pair id; an archive carries them unsealed (the archive is a
secret like the database) and the importing server seals them again under its own key and the target project id.
"""
from __future__ import annotations

from baas.push.vapid import pair_context


class VapidKeysPart:
    name = "push_vapid_keys"

    def __init__(self, keys):
        self.keys = keys  # baas.push.vapid.VapidKeys

    def export(self, project_id: str):
        doc = self.keys.collection.find_one({"_id": project_id})
        if doc is None:
            return []
        doc = self.keys.reseal(doc)  # pairs sealed by earlier versions or previous keys: under the current key
        pairs = []
        for pair in doc["keys"]:
            raw = self.keys.sealer.open(pair["sealed"], pair_context(project_id, pair["id"]))
            pairs.append({"id": pair["id"], "public_key": pair["public_key"], "created_at": pair["created_at"],
                          "private_value": raw.hex()})
        return [{"current": doc["current"], "keys": pairs}]

    def replace(self, project_id: str, records: list[dict], *, same_id: bool) -> int:
        from cryptography.hazmat.primitives.asymmetric import ec

        if not records:
            return 0  # the project keeps its pairs (or gets a first one when it is used)
        record = records[0]
        sealed = []
        for pair in record["keys"]:
            value = int(pair["private_value"], 16)
            ec.derive_private_key(value, ec.SECP256R1())  # refuses what is not a P-256 private key, as before
            raw = value.to_bytes(32, "big")
            sealed.append({"id": pair["id"], "public_key": pair["public_key"], "created_at": pair["created_at"],
                           "sealed": self.keys.sealer.seal(raw, pair_context(project_id, pair["id"]))})
        self.keys.forget(project_id)  # this process's cached private keys too
        self.keys.collection.insert_one({"_id": project_id, "current": record["current"], "keys": sealed})
        return len(sealed)
