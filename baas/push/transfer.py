"""Project export/import (baas.projects.transfer) of a project's VAPID key pairs.

Browsers bind each push subscription to the applicationServerKey it was made with, so an imported project must
sign with the same pairs or every subscription would stop working. The private keys are sealed with this
server's jwt.secret and the project id; an archive carries them unsealed (the archive is a secret like the
database) and the importing server seals them again with its own secret and the target project id.
"""
from __future__ import annotations


class VapidKeysPart:
    name = "push_vapid_keys"

    def __init__(self, keys):
        self.keys = keys  # baas.push.vapid.VapidKeys

    def export(self, project_id: str):
        doc = self.keys.collection.find_one({"_id": project_id})
        if doc is None:
            return []
        pairs = []
        for pair in doc["keys"]:
            private = self.keys._open(pair["sealed"], f"{project_id}/{pair['id']}".encode())
            pairs.append({"id": pair["id"], "public_key": pair["public_key"], "created_at": pair["created_at"],
                          "private_value": f"{private.private_numbers().private_value:064x}"})
        return [{"current": doc["current"], "keys": pairs}]

    def replace(self, project_id: str, records: list[dict], *, same_id: bool) -> int:
        from cryptography.hazmat.primitives.asymmetric import ec

        if not records:
            return 0  # the project keeps its pairs (or gets a first one when it is used)
        record = records[0]
        sealed = []
        for pair in record["keys"]:
            private = ec.derive_private_key(int(pair["private_value"], 16), ec.SECP256R1())
            sealed.append({"id": pair["id"], "public_key": pair["public_key"], "created_at": pair["created_at"],
                           "sealed": self.keys._seal(private, f"{project_id}/{pair['id']}".encode())})
        self.keys.forget(project_id)  # this process's cached private keys too
        self.keys.collection.insert_one({"_id": project_id, "current": record["current"], "keys": sealed})
        return len(sealed)
