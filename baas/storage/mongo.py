"""The MongoDB adapter: one platform database plus one database per project.

The same code path serves a real MongoDB (production) and the embedded nx-27017 server (default).
"""
from __future__ import annotations

import re

import pymongo
from pymongo.errors import PyMongoError

PROJECT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")


class MongoStore:
    def __init__(self, uri: str, db_prefix: str = "baas_", timeout_ms: int = 2000, client=None,
                 socket_timeout_ms: int | None = None):
        self.uri = uri
        self.db_prefix = db_prefix
        # MongoClient connects lazily, so building it here does no I/O. A short server selection timeout turns
        # a database that is down or restarting into a prompt 503; the socket timeout frees a request thread
        # from a server that accepted the connection but stopped answering.
        self.client = client or pymongo.MongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=socket_timeout_ms,
            tz_aware=True,
            uuidRepresentation="standard",
            appname="baas",
        )
        self.platform = self.client[f"{db_prefix}platform"]

    def project_db_name(self, project_id: str) -> str:
        if not PROJECT_ID_PATTERN.match(project_id):
            raise ValueError(f"not a project id: {project_id!r}")
        return f"{self.db_prefix}p_{project_id}"

    def project_db(self, project_id: str):
        return self.client[self.project_db_name(project_id)]

    def collection(self, project_id: str, name: str):
        return self.project_db(project_id)[name]

    def drop_project(self, project_id: str) -> None:
        self.client.drop_database(self.project_db_name(project_id))

    def ping(self) -> None:
        """Raise ConnectionError naming MongoDB when it does not answer."""
        try:
            self.client.admin.command("ping")
        except PyMongoError as exc:
            # Keep the first reason; pymongo appends a long topology dump meant for debugging.
            reason = str(exc).split(", Timeout: ")[0]
            raise ConnectionError(f"MongoDB at {redact_uri(self.uri)} is unreachable: {reason}") from None

    def close(self) -> None:
        self.client.close()


def redact_uri(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", uri)


def ensure_index(collection, keys, *, name: str, **options) -> None:
    """Create an index with an explicit name (servers disagree on generated names)."""
    collection.create_index(keys, name=name, **options)


def find_one(collection, filter: dict, projection: dict | None = None):
    """`collection.find_one` for the hot paths, as one `find` command.

    Equivalent on every MongoDB server (limit 1, single batch) but skips pymongo's cursor machinery, which
    is about a fifth of the driver's CPU on a lookup by id.
    """
    command = {"find": collection.name, "filter": filter, "limit": 1, "singleBatch": True}
    if projection is not None:
        command["projection"] = projection
    reply = collection.database.command(command, codec_options=collection.codec_options,
                                        read_preference=collection.read_preference)
    batch = reply["cursor"]["firstBatch"]
    return batch[0] if batch else None


def find_page(collection, filter: dict, projection: dict | None, sort: list, skip: int, limit: int,
              max_time_ms: int | None = None) -> list:
    """`list(collection.find(filter, projection, sort=..., skip=..., limit=...))` as one `find` command.

    A page is small and bounded, so the first batch normally holds all of it; pymongo's cursor machinery
    costs more CPU than decoding the page itself. Should the server cut the batch short (its 16 MB batch
    limit), the cursor stays open: it is closed and the page is read the ordinary way.
    """
    command = {"find": collection.name, "filter": filter, "sort": dict(sort), "limit": limit, "batchSize": limit}
    if skip:
        command["skip"] = skip
    if projection is not None:
        command["projection"] = projection
    if max_time_ms:
        command["maxTimeMS"] = max_time_ms
    reply = collection.database.command(command, codec_options=collection.codec_options,
                                        read_preference=collection.read_preference)
    cursor = reply["cursor"]
    if not cursor.get("id"):
        return cursor["firstBatch"]
    collection.database.command({"killCursors": collection.name, "cursors": [cursor["id"]]})
    return list(collection.find(filter, projection, sort=sort, skip=skip, limit=limit, max_time_ms=max_time_ms))
