"""Project export and import: one tar.gz holding a project's database, keys and settings.

Archive layout (every JSON value is MongoDB Extended JSON, canonical mode, so dates, ObjectIds and binary data
survive the round trip exactly):

    project.json                 the project record (id, name, settings)
    keys.jsonl                   its API keys (hashes only: the keys keep working after an import)
    db/<collection>.jsonl        every document of each collection of the project database (definitions,
                                 documents, users with their password hashes, ...)
    db/<collection>.indexes.json the collection's indexes
    manifest.json                last: format, version, and each entry's SHA-256, size and document count

Sessions, refresh tokens and revocation markers are not exported: users of an imported project log in again.
File contents (S3/MinIO) are not in the archive; mirror them with `mc mirror` (docs/deployment.md).

An import checks the whole archive (gzip, tar, every SHA-256 against the manifest) before it writes anything,
so a truncated or altered archive is refused with nothing written. It then writes under the project id marked
'importing' (invisible to every API) and switches it to 'active' only when everything is in place; a failure
on the way removes what it wrote.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import time
from typing import BinaryIO, Iterator

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from pymongo.errors import DuplicateKeyError

from baas.errors import Conflict, Invalid, PayloadTooLarge
from baas.util import utcnow

FORMAT = "baas-project-export"
VERSION = 1
# Per-session state: meaningless on another server, and a security risk to carry over.
SKIPPED_COLLECTIONS = frozenset({"_sessions", "_refresh_tokens", "_revoked", "_user_tokens", "_login_failures"})
SPOOL_BYTES = 8 * 1024 * 1024
INSERT_BATCH = 500


def _dumps(value) -> str:
    return json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS)


def _loads(text: str):
    return json_util.loads(text, json_options=CANONICAL_JSON_OPTIONS)


class _Chunks(io.RawIOBase):
    """A write-only file whose written bytes are collected for a streaming response."""

    def __init__(self):
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


class ProjectTransfer:
    def __init__(self, mongo, projects, max_bytes: int):
        self.mongo = mongo
        self.max_bytes = max_bytes  # of the unpacked entries too: a small gzip can unpack to gigabytes
        self.projects = projects
        self.keys = mongo.platform["api_keys"]

    # ---- export

    def export(self, project_id: str) -> Iterator[bytes]:
        """The archive as a stream of chunks; the project is checked before the first chunk."""
        project = self.projects.get(project_id)
        db = self.mongo.project_db(project_id)
        names = sorted(name for name in db.list_collection_names() if name not in SKIPPED_COLLECTIONS)
        return self._stream(project, db, names)

    def _stream(self, project: dict, db, names: list[str]) -> Iterator[bytes]:
        sink = _Chunks()
        entries = []
        with tarfile.open(fileobj=sink, mode="w|gz") as archive:
            def add(path: str, lines: Iterator[str]) -> None:
                with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
                    digest, size, count = hashlib.sha256(), 0, 0
                    for line in lines:
                        data = (line + "\n").encode()
                        spool.write(data)
                        digest.update(data)
                        size += len(data)
                        count += 1
                    spool.seek(0)
                    info = tarfile.TarInfo(path)
                    info.size, info.mtime, info.mode = size, int(time.time()), 0o600
                    archive.addfile(info, spool)
                entries.append({"path": path, "sha256": digest.hexdigest(), "bytes": size, "count": count})

            record = {key: project.get(key) for key in ("_id", "name", "settings", "created_at")}
            add("project.json", iter([_dumps(record)]))
            yield sink.take()
            add("keys.jsonl", (_dumps(doc) for doc in self.keys.find({"project_id": project["_id"]})
                               .sort("_id", 1)))
            yield sink.take()
            for name in names:
                collection = db[name]
                add(f"db/{name}.jsonl", (_dumps(doc) for doc in collection.find({}).sort("_id", 1)))
                indexes = [dict(index) for index in collection.list_indexes() if index.get("name") != "_id_"]
                add(f"db/{name}.indexes.json", iter([_dumps(indexes)]))
                yield sink.take()
            manifest = {"format": FORMAT, "version": VERSION, "project_id": project["_id"],
                        "exported_at": utcnow().isoformat(), "entries": entries}
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            archive.addfile(info, io.BytesIO(data))
        yield sink.take()

    # ---- import

    def import_archive(self, stream: BinaryIO, project_id: str | None = None) -> dict:
        with tempfile.TemporaryFile() as copy:
            shutil.copyfileobj(stream, copy, 1024 * 1024)
            copy.seek(0)
            contents = self._read_verified(copy)
        return self._write(contents, project_id)

    def _read_verified(self, handle) -> dict:
        """{path: bytes} of a complete, unaltered archive, or Invalid naming what is wrong."""
        contents: dict[str, bytes] = {}
        unpacked = 0
        try:
            with tarfile.open(fileobj=handle, mode="r:gz") as archive:
                for member in archive:
                    if not member.isfile() or member.name.startswith("/") or ".." in member.name.split("/"):
                        raise Invalid(f"The archive holds an unexpected entry '{member.name}'.")
                    unpacked += member.size
                    if unpacked > self.max_bytes:
                        raise PayloadTooLarge(f"The archive unpacks to more than {self.max_bytes} bytes "
                                              "(projects.max_import_bytes); nothing was imported.")
                    contents[member.name] = archive.extractfile(member).read()
        except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as exc:
            raise Invalid(f"The archive is damaged or truncated ({exc.__class__.__name__}); nothing was "
                          "imported.") from None
        try:
            manifest = json.loads(contents.pop("manifest.json"))
        except (KeyError, ValueError):
            raise Invalid("The archive has no readable manifest.json (truncated?); nothing was imported.") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise Invalid(f"This is not a {FORMAT} archive of version {VERSION}.")
        listed = {entry.get("path"): entry for entry in manifest.get("entries") or [] if isinstance(entry, dict)}
        if set(listed) != set(contents):
            raise Invalid("The archive's entries do not match its manifest; nothing was imported.")
        for path, data in contents.items():
            if hashlib.sha256(data).hexdigest() != listed[path].get("sha256"):
                raise Invalid(f"The SHA-256 of '{path}' does not match the manifest; nothing was imported.")
        return contents

    def _write(self, contents: dict, project_id: str | None) -> dict:
        try:
            record = _loads(contents["project.json"].decode())
            keys = [_loads(line) for line in contents["keys.jsonl"].decode().splitlines() if line]
        except (KeyError, ValueError) as exc:
            raise Invalid(f"The archive's project or keys cannot be read ({exc.__class__.__name__}).") from None
        target = self.projects.check_id(project_id or record["_id"])
        now = utcnow()
        try:
            self.projects.collection.insert_one({
                "_id": target, "name": record.get("name") or target, "settings": record.get("settings") or {},
                "status": "importing", "created_at": record.get("created_at") or now, "updated_at": now})
        except DuplicateKeyError:
            raise Conflict(f"A project with id '{target}' already exists; import under another id "
                           "(?project_id=...) or delete it first.") from None
        db = self.mongo.project_db(target)
        counts: dict[str, int] = {}
        try:
            for path, data in sorted(contents.items()):
                if not (path.startswith("db/") and path.endswith(".jsonl")):
                    continue
                name = path[len("db/"):-len(".jsonl")]
                documents = [_loads(line) for line in data.decode().splitlines() if line]
                # Small batches: the embedded database runs one command at a time, and other projects' requests
                # get their turn between batches.
                for start in range(0, len(documents), INSERT_BATCH):
                    db[name].insert_many(documents[start:start + INSERT_BATCH], ordered=True)
                counts[name] = len(documents)
                for index in _loads(contents.get(f"db/{name}.indexes.json", b"[]").decode()):
                    options = {key: index[key] for key in ("unique", "sparse", "expireAfterSeconds",
                                                           "partialFilterExpression") if key in index}
                    db[name].create_index(list(index["key"].items()), name=index["name"], **options)
            if target != record["_id"]:
                # Key hashes are unique per server: under a new id (often beside the original) the project
                # gets new keys instead.
                keys = []
            if keys:
                self.keys.insert_many(keys, ordered=True)
        except Exception:
            self.keys.delete_many({"project_id": target})
            self.mongo.drop_project(target)
            self.projects.collection.delete_one({"_id": target, "status": "importing"})
            raise
        self.projects.collection.update_one({"_id": target, "status": "importing"},
                                            {"$set": {"status": "active"}, "$currentDate": {"updated_at": True}})
        return {"project_id": target, "collections": counts, "keys": len(keys)}
