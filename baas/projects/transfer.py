"""Project export and import: one tar.gz holding everything of a project, streamed both ways.

Archive layout (every JSON value is MongoDB Extended JSON, canonical mode, so dates, ObjectIds, binary data and
decimals survive the round trip exactly):

    project.json                 the project record (id, name, settings)
    parts/<name>.jsonl           the project's records in platform collections, one file per archive part
                                 (keys: API key hashes; plugin_settings; push_vapid_keys; ... see `parts`)
    db/<collection>.jsonl        every document of each collection of the project database (definitions,
                                 documents, users with their password hashes, file metadata, push subscriptions)
    db/<collection>.indexes.json the collection's indexes (also of per-session collections, whose documents are not
                                 exported)
    files/<file id>              each file's bytes, as stored (its metadata is in db/_files.jsonl)
    manifest.json                last: format, version, and each entry's SHA-256, size and record count

Sessions, refresh tokens and revocation markers are not exported: users of an imported project log in again.
The archive holds password hashes, key hashes and the push signing keys: keep it as secret as the database.

An import reads the upload into a temporary file and checks it whole (gzip, tar, every SHA-256 against the
manifest, every file's bytes against its metadata) before it writes anything, so a truncated or altered archive
is refused with nothing written. It then reads it a second time, entry by entry, and writes into a fresh storage
(a database and a blob prefix of their own, named by a random storage id) that no request can reach. Only when
everything is in place does one update of the project record point the project at that storage (`storage` in
`projects`): a new project appears complete, and `overwrite` switches an existing one from its old data to the
new in one step. A failure anywhere before removes the fresh storage; an import whose process died is removed
by the next import. Neither path renames collections, which MongoDB could do but the embedded database cannot.

Parts: a feature that keeps per-project records outside the project database adds an ArchivePart to
`ProjectTransfer.parts` in its init_app (plugin settings, VAPID keys, and native push devices the same way).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import secrets
import shutil
import tarfile
import tempfile
import time
import zlib
from contextlib import contextmanager
from typing import BinaryIO, Iterable, Iterator, Protocol

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from bson.errors import InvalidDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

from baas.errors import Conflict, Invalid, PayloadTooLarge
from baas.query import DOCUMENT_ID
from baas.storage.blobs import BlobNotFound
from baas.util import utcnow

log = logging.getLogger("baas.projects")

FORMAT = "baas-project-export"
VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: keys.jsonl at the top level (the keys part), no other parts, no files
# Per-session state: meaningless on another server, and a security risk to carry over (indexes still go along).
SKIPPED_COLLECTIONS = frozenset({"_sessions", "_refresh_tokens", "_revoked", "_user_tokens", "_login_failures"})
FILES_COLLECTION = "_files"      # baas.files keeps one metadata document per file here, `key` naming its object
USAGE_COLLECTION = "file_usage"  # platform: bytes and count per project (baas.files)
IMPORTS = "project_imports"      # platform: imports under way, so a crashed one is cleaned up
ABANDONED_SECONDS = 24 * 3600
SPOOL_BYTES = 8 * 1024 * 1024
INSERT_BATCH = 500
CHUNK = 1024 * 1024
# What a project database's collection may be called (documents: c_<name>, plugins: _<plugin>_<name>, ...);
# anything else in an archive is refused (no paths, no system collections).
_COLLECTION_NAME = re.compile(r"^(?!system\.)[A-Za-z0-9_][A-Za-z0-9_.\-]{0,119}$")


def dumps(value) -> str:
    return json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS)


def loads(text: str):
    return json_util.loads(text, json_options=CANONICAL_JSON_OPTIONS)


def storage_prefix(storage_id: str) -> str:
    """The blob prefix of an imported project's files (project ids cannot name it: they have no 'stores/')."""
    return f"stores/{storage_id}/"


class ArchivePart(Protocol):
    """Per-project records a feature keeps outside the project database (they are small: read whole)."""

    name: str  # the entry is parts/<name>.jsonl

    def export(self, project_id: str) -> Iterable[dict]:
        """The project's records, as JSON-able (Extended JSON) documents."""

    def replace(self, project_id: str, records: list[dict], *, same_id: bool) -> int:
        """Make `records` the project's records (called once the data is in place); returns how many it kept.
        `same_id` is False when the archive is imported under another project id."""


class KeysPart:
    """API keys, hashes only: under the same id they keep working; under another id the project keeps its own."""

    name = "keys"

    def __init__(self, keys_collection, on_change):
        self.collection = keys_collection
        self.on_change = on_change  # drops this process's key cache

    def export(self, project_id: str) -> Iterable[dict]:
        return self.collection.find({"project_id": project_id}).sort("_id", 1)

    def replace(self, project_id: str, records: list[dict], *, same_id: bool) -> int:
        if not same_id:
            # Key hashes are unique per server: under a new id (often beside the original) the project gets
            # new keys instead.
            return 0
        wanted = {record["_id"] for record in records}
        self.collection.delete_many({"project_id": project_id, "_id": {"$nin": list(wanted)}})
        present = {doc["_id"] for doc in self.collection.find({"_id": {"$in": list(wanted)}}, {"_id": 1})}
        fresh = [{**record, "project_id": project_id} for record in records if record["_id"] not in present]
        if fresh:
            self.collection.insert_many(fresh, ordered=False)
        self.on_change()
        return len(records)


def compressible(content_type: str) -> bool:
    """Worth deflating: most stored files (images, video, archives, PDFs) are compressed already, and deflating
    them costs a CPU second per ~40 MB for nothing."""
    return content_type.startswith("text/") or content_type in COMPRESSIBLE_TYPES


COMPRESSIBLE_TYPES = frozenset({"application/json", "application/xml", "application/javascript", "image/svg+xml",
                                "application/x-ndjson", "application/yaml", "application/sql", "image/bmp",
                                "application/x-tar"})


class _Members:
    """Writes a tar.gz as a stream of compressed chunks, one member at a time: nothing is held whole, not even
    a multi-GB file (tarfile's own writer would buffer a member until it is complete).

    Members that do not compress are stored (deflate level 0) in a gzip member of their own: a gzip stream may
    be several members one after the other (RFC 1952), which gzip, tar and Python's gzip module read as one."""

    def __init__(self):
        self.level = 6
        self.gzip = zlib.compressobj(self.level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self.entries: list[dict] = []

    def _switch(self, level: int) -> bytes:
        if level == self.level:
            return b""
        ended = self.gzip.flush()
        self.level = level
        self.gzip = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return ended

    def member(self, path: str, size: int, chunks: Iterable[bytes], count: int | None = None,
               compress: bool = True) -> Iterator[bytes]:
        info = tarfile.TarInfo(path)
        info.size, info.mtime, info.mode = size, int(time.time()), 0o600
        yield self._switch(6 if compress else 0)
        yield self.gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT))
        digest, written = hashlib.sha256(), 0
        for chunk in chunks:
            written += len(chunk)
            if written > size:
                raise RuntimeError(f"{path} grew while it was exported")
            digest.update(chunk)
            yield self.gzip.compress(chunk)
        if written != size:
            raise RuntimeError(f"{path} has {written} bytes, {size} expected")
        yield self.gzip.compress(b"\0" * (-size % tarfile.BLOCKSIZE))
        entry = {"path": path, "sha256": digest.hexdigest(), "bytes": size}
        if count is not None:
            entry["count"] = count
        self.entries.append(entry)

    def lines(self, path: str, documents: Iterable) -> Iterator[bytes]:
        """A JSON-lines member: spooled first (to disk past SPOOL_BYTES), since a tar header needs the size."""
        with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
            count = 0
            for document in documents:
                spool.write((dumps(document) + "\n").encode())
                count += 1
            size = spool.tell()
            spool.seek(0)
            yield from self.member(path, size, iter(lambda: spool.read(CHUNK), b""), count)

    def close(self, manifest: dict) -> Iterator[bytes]:
        data = json.dumps(manifest, indent=1).encode()
        yield self._switch(6)
        info = tarfile.TarInfo("manifest.json")
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
        yield self.gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT) + data +
                                 b"\0" * (-len(data) % tarfile.BLOCKSIZE) + b"\0" * (2 * tarfile.BLOCKSIZE))
        yield self.gzip.flush()


class _Checked:
    """What the verifying pass learnt of an archive, so the writing pass needs no second look at the manifest."""

    def __init__(self):
        self.record: dict | None = None
        self.files: dict[str, dict] = {}      # file id -> its metadata document's sha256, size, content type
        self.parts: dict[str, list] = {}
        self.entries: dict[str, dict] = {}
        self.version = VERSION


class ProjectTransfer:
    def __init__(self, mongo, projects, blobs, max_bytes: int, cache_seconds: float = 2):
        self.mongo = mongo
        self.projects = projects
        self.blobs = blobs
        self.max_bytes = max_bytes  # of the unpacked entries too: a small gzip can unpack to gigabytes
        self.cache_seconds = cache_seconds
        self.imports = mongo.platform[IMPORTS]
        self.usage = mongo.platform[USAGE_COLLECTION]
        self.parts: list[ArchivePart] = []

    # ---- export

    def export(self, project_id: str) -> Iterator[bytes]:
        """The archive as a stream of chunks; the project is checked before the first chunk."""
        project = self.projects.get(project_id)
        db = self.mongo.project_db(project_id)
        names = sorted(name for name in db.list_collection_names() if not name.startswith("system."))
        return _coalesced(self._stream(project, db, names))

    def _stream(self, project: dict, db, names: list[str]) -> Iterator[bytes]:
        archive = _Members()
        record = {key: project.get(key) for key in ("_id", "name", "settings", "created_at")}
        yield from archive.lines("project.json", [record])
        for part in self.parts:
            yield from archive.lines(f"parts/{part.name}.jsonl", part.export(project["_id"]))
        # The files whose metadata went into the archive, and only those, get their bytes in it: a file uploaded
        # meanwhile would be bytes without metadata.
        exported_files: list[tuple] = []
        for name in names:
            collection = db[name]
            if name not in SKIPPED_COLLECTIONS:
                documents = collection.find({}).sort("_id", 1)
                if name == FILES_COLLECTION:
                    documents = _noting_files(documents, exported_files)
                yield from archive.lines(f"db/{name}.jsonl", documents)
            indexes = [dict(index) for index in collection.list_indexes() if index.get("name") != "_id_"]
            yield from archive.lines(f"db/{name}.indexes.json", [indexes])
        for file_id, key, size, content_type in exported_files:
            try:
                chunks = self.blobs.open(key)
            except BlobNotFound:
                log.warning("export of %s: file %s was deleted during the export; the archive is cut short, so "
                            "an import refuses it: export again", project["_id"], file_id)
                raise
            yield from archive.member(f"files/{file_id}", size, chunks, compress=compressible(content_type))
        yield from archive.close({"format": FORMAT, "version": VERSION, "project_id": project["_id"],
                                  "exported_at": utcnow().isoformat(), "entries": archive.entries})

    # ---- import

    def import_archive(self, stream: BinaryIO, project_id: str | None = None, overwrite: bool = False) -> dict:
        with tempfile.TemporaryFile() as copy:
            shutil.copyfileobj(stream, copy, CHUNK)
            copy.seek(0)
            checked = self._verify(copy)
            target = self.projects.check_id(project_id or checked.record["_id"])
            if not overwrite and self._exists(target):
                raise Conflict(f"A project with id '{target}' already exists; import under another id "
                               "(?project_id=...), or replace it with ?overwrite=true.")
            self._remove_abandoned()
            copy.seek(0)
            return self._write(copy, checked, target, overwrite)

    def _exists(self, project_id: str) -> bool:
        return self.projects.collection.find_one({"_id": project_id}, {"_id": 1}) is not None

    @staticmethod
    def _open(handle):
        # A stream (members read in order, once) of a gzip that may be several members (see _Members):
        # tarfile's own "r|gz" reads only the first.
        return tarfile.open(fileobj=gzip.GzipFile(fileobj=handle, mode="rb"), mode="r|")

    def _verify(self, handle) -> _Checked:
        """Read the whole archive once: every entry hashed, small entries parsed; Invalid names what is wrong."""
        checked = _Checked()
        unpacked = 0
        try:
            with self._open(handle) as archive:
                for member in archive:
                    name = member.name
                    if not member.isfile() or not _valid_path(name):
                        raise Invalid(f"The archive holds an unexpected entry '{name}'.")
                    if name in checked.entries:
                        raise Invalid(f"The archive holds '{name}' twice.")
                    unpacked += member.size
                    if unpacked > self.max_bytes:
                        raise PayloadTooLarge(f"The archive unpacks to more than {self.max_bytes} bytes "
                                              "(projects.max_import_bytes); nothing was imported.")
                    source = archive.extractfile(member)
                    digest = hashlib.sha256()
                    keep = name in ("manifest.json", "project.json", "keys.jsonl") or name.startswith("parts/")
                    kept = bytearray()
                    lines = _LineSplitter() if name == f"db/{FILES_COLLECTION}.jsonl" else None
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        if keep:
                            kept += chunk
                        if lines is not None:
                            for line in lines.feed(chunk):
                                _note_file(checked, line)
                    if lines is not None and lines.rest.strip():
                        _note_file(checked, lines.rest)
                    checked.entries[name] = {"sha256": digest.hexdigest(), "bytes": member.size,
                                             "data": bytes(kept) if keep else None}
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise Invalid(f"The archive is damaged or truncated ({exc.__class__.__name__}); nothing was "
                          "imported.") from None
        manifest_entry = checked.entries.pop("manifest.json", None)
        try:
            manifest = json.loads(manifest_entry["data"])
        except (TypeError, ValueError):
            raise Invalid("The archive has no readable manifest.json (truncated?); nothing was imported.") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
                or manifest.get("version") not in READABLE_VERSIONS:
            raise Invalid(f"This is not a {FORMAT} archive (versions {', '.join(map(str, READABLE_VERSIONS))}).")
        checked.version = manifest["version"]
        if checked.version == 1:
            checked.files = {}  # version 1 held file metadata only: the bytes were mirrored on their own
        listed = {entry.get("path"): entry for entry in manifest.get("entries") or [] if isinstance(entry, dict)}
        if set(listed) != set(checked.entries):
            raise Invalid("The archive's entries do not match its manifest; nothing was imported.")
        for path, entry in checked.entries.items():
            if entry["sha256"] != listed[path].get("sha256"):
                raise Invalid(f"The SHA-256 of '{path}' does not match the manifest; nothing was imported.")
        for file_id, meta in checked.files.items():
            entry = checked.entries.get(f"files/{file_id}")
            if entry is None or entry["sha256"] != meta["sha256"] or entry["bytes"] != meta["size"]:
                raise Invalid(f"The bytes of file '{file_id}' do not match its metadata (SHA-256 and size); "
                              "nothing was imported.")
        if len(checked.files) != sum(1 for path in checked.entries if path.startswith("files/")):
            raise Invalid("The archive holds file contents without metadata; nothing was imported.")
        try:
            checked.record = loads(checked.entries["project.json"]["data"].decode())
            for path, entry in checked.entries.items():
                if path.startswith("parts/") or path == "keys.jsonl":
                    part = "keys" if path == "keys.jsonl" else path[len("parts/"):-len(".jsonl")]
                    checked.parts[part] = [loads(line) for line in entry["data"].decode().splitlines() if line]
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise Invalid(f"The archive's project record or parts cannot be read ({exc.__class__.__name__}); "
                          "nothing was imported.") from None
        if not isinstance(checked.record, dict) or not isinstance(checked.record.get("_id"), str):
            raise Invalid("The archive's project.json names no project.")
        return checked

    def _write(self, handle, checked: _Checked, target: str, overwrite: bool) -> dict:
        storage_id = secrets.token_hex(8)
        self.imports.insert_one({"_id": storage_id, "project_id": target, "started": time.time()})
        db = self.mongo.storage_db(storage_id)
        counts: dict[str, int] = {}
        usage = {"bytes": 0, "count": 0}
        try:
            with self._open(handle) as archive:
                for member in archive:
                    name = member.name
                    if name.startswith("db/"):
                        with _refused_as_invalid(name):
                            if name.endswith(".jsonl"):
                                collection = name[len("db/"):-len(".jsonl")]
                                counts[collection] = self._insert(
                                    db[collection], archive.extractfile(member),
                                    storage_id if checked.version > 1 else None,
                                    usage if collection == FILES_COLLECTION else None)
                            else:
                                collection = name[len("db/"):-len(".indexes.json")]
                                _create_indexes(db[collection], loads(archive.extractfile(member).read().decode()))
                    elif name.startswith("files/"):
                        file_id = name[len("files/"):]
                        self.blobs.put(storage_prefix(storage_id) + f"files/{file_id}", archive.extractfile(member),
                                       member.size, checked.files[file_id]["content_type"])
            kept = self._switch(checked, target, storage_id, overwrite, usage)
        except Exception:
            self._discard(storage_id)
            raise
        return {"project_id": target, "collections": counts, "files": usage["count"], "file_bytes": usage["bytes"],
                "keys": kept.get("keys", 0), "parts": kept, "overwritten": bool(kept.pop("_overwritten", False))}

    def _insert(self, collection, source, storage_id: str | None, usage: dict | None) -> int:
        """Insert a JSON-lines entry in batches; file metadata (`usage` given) is counted and, when the archive
        holds the bytes (`storage_id`), pointed at their new place."""
        count, batch = 0, []
        lines = _LineSplitter()

        def flush():
            # Small batches: the embedded database runs one command at a time, and other projects' requests
            # get their turn between batches.
            if batch:
                collection.insert_many(batch, ordered=True)
                batch.clear()

        def add(line: bytes):
            nonlocal count
            document = loads(line.decode())
            if usage is not None:
                if storage_id is not None:
                    document["key"] = storage_prefix(storage_id) + f"files/{document['_id']}"
                usage["bytes"] += int(document.get("size") or 0)
                usage["count"] += 1
            batch.append(document)
            count += 1
            if len(batch) >= INSERT_BATCH:
                flush()

        while chunk := source.read(CHUNK):
            for line in lines.feed(chunk):
                add(line)
        if lines.rest.strip():
            add(lines.rest)
        flush()
        return count

    def _switch(self, checked: _Checked, target: str, storage_id: str, overwrite: bool, usage: dict) -> dict:
        """Point the project at the new storage in one update, then its platform records; drop the old data."""
        record = checked.record
        now = utcnow()
        previous = self.projects.collection.find_one({"_id": target}) if overwrite else None
        if previous is not None and previous.get("status") not in ("active", None):
            raise Conflict(f"The project '{target}' is being {previous.get('status')}; try again when that ends.")
        fields = {"name": record.get("name") or target, "settings": record.get("settings") or {},
                  "status": "active", "storage": storage_id}
        if previous is None:
            try:
                self.projects.collection.insert_one({"_id": target, **fields,
                                                     "created_at": record.get("created_at") or now,
                                                     "updated_at": now})
            except DuplicateKeyError:
                raise Conflict(f"A project with id '{target}' was created meanwhile; nothing was imported.") from None
        else:
            switched = self.projects.collection.update_one(
                {"_id": target, "storage": previous.get("storage")},
                {"$set": fields, "$currentDate": {"updated_at": True}})
            if not switched.matched_count:
                raise Conflict(f"The project '{target}' changed during the import (another import?); nothing was "
                               "imported.")
        self.imports.delete_one({"_id": storage_id})
        self.projects.forget_cached(target)
        same_id = target == record["_id"]
        kept: dict = {}
        for part in self.parts:
            kept[part.name] = part.replace(target, checked.parts.get(part.name, []), same_id=same_id)
        self.usage.delete_one({"_id": target})
        self.usage.insert_one({"_id": target, **usage})
        if previous is not None:
            kept["_overwritten"] = True
            self._drop_old(target, previous.get("storage"))
        return kept

    def _drop_old(self, project_id: str, old_storage: str | None) -> None:
        """The data the project used before an overwrite, once no process can still be using it."""
        # Other processes resolve the project's storage through a cache of keys.cache_seconds.
        time.sleep(self.cache_seconds + 0.5)
        try:
            if old_storage:
                self.mongo.client.drop_database(self.mongo.storage_db_name(old_storage))
                self.blobs.delete_prefix(storage_prefix(old_storage))
            else:
                old = self.mongo.client[self.mongo.derived_db_name(project_id)]
                for doc in old[FILES_COLLECTION].find({}, {"key": 1}):
                    self.blobs.delete(doc["key"])
                self.mongo.client.drop_database(old.name)
            from baas.projects.service import project_prefix

            self.blobs.delete_prefix(project_prefix(project_id) + "thumbs/")  # made from the old files
        except Exception as exc:  # the import itself succeeded: leftovers cost space, nothing else
            log.warning("project %s: the data from before the overwrite could not be removed: %s", project_id, exc)

    def _discard(self, storage_id: str) -> None:
        try:
            self.mongo.client.drop_database(self.mongo.storage_db_name(storage_id))
            self.blobs.delete_prefix(storage_prefix(storage_id))
            self.imports.delete_one({"_id": storage_id})
        except Exception as exc:
            log.warning("a failed import's storage %s stays for the next import to remove: %s", storage_id, exc)

    def _remove_abandoned(self) -> None:
        """Storage of imports whose process died (they never switched a project to it)."""
        for entry in self.imports.find({"started": {"$lt": time.time() - ABANDONED_SECONDS}}):
            if self.projects.collection.find_one({"storage": entry["_id"]}, {"_id": 1}) is None:
                self._discard(entry["_id"])
            else:
                self.imports.delete_one({"_id": entry["_id"]})


def _coalesced(chunks: Iterator[bytes], size: int = 256 * 1024) -> Iterator[bytes]:
    """The compressor's many small (often empty) outputs as chunks of about `size`: each chunk costs the server
    a write call, the client a read."""
    pending, length = [], 0
    for chunk in chunks:
        if chunk:
            pending.append(chunk)
            length += len(chunk)
            if length >= size:
                yield b"".join(pending)
                pending, length = [], 0
    if pending:
        yield b"".join(pending)


def _noting_files(documents: Iterable[dict], exported: list) -> Iterator[dict]:
    """File metadata documents as they are exported, noting (id, key, size, content type) of each (a hundred
    bytes a file, so the bytes follow without a cursor held open for as long as they take to stream)."""
    for doc in documents:
        exported.append((doc["_id"], doc["key"], doc["size"], doc.get("content_type") or ""))
        yield doc


class _LineSplitter:
    """JSON lines out of chunks, holding at most one partial line."""

    def __init__(self):
        self.rest = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        return [line for line in lines if line.strip()]


def _valid_path(name: str) -> bool:
    if name in ("manifest.json", "project.json", "keys.jsonl"):
        return True
    folder, _, rest = name.partition("/")
    if folder == "parts":
        return rest.endswith(".jsonl") and bool(DOCUMENT_ID.match(rest[:-len(".jsonl")]))
    if folder == "db":
        for suffix in (".indexes.json", ".jsonl"):
            if rest.endswith(suffix):
                return bool(_COLLECTION_NAME.match(rest[:-len(suffix)])) and ".." not in rest
        return False
    if folder == "files":
        return bool(DOCUMENT_ID.match(rest))
    return False


def _note_file(checked: _Checked, line: bytes) -> None:
    try:
        doc = loads(line.decode())
        checked.files[doc["_id"]] = {"sha256": doc["sha256"], "size": doc["size"],
                                     "content_type": doc.get("content_type") or "application/octet-stream"}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise Invalid("A file's metadata in the archive cannot be read; nothing was imported.") from None


@contextmanager
def _refused_as_invalid(path: str):
    """What the database refuses to store from an entry (a duplicate _id, a broken document or index) is the
    archive's fault: a 400 naming the entry, not a server error."""
    try:
        yield
    except (DuplicateKeyError, OperationFailure, InvalidDocument, ValueError, KeyError, TypeError,
            UnicodeDecodeError) as exc:
        reason = "a duplicate _id or unique value" if isinstance(exc, DuplicateKeyError) else exc.__class__.__name__
        raise Invalid(f"The archive's '{path}' cannot be imported ({reason}); nothing was imported.") from None


def _create_indexes(collection, indexes) -> None:
    from baas.storage.mongo import ensure_index

    for index in indexes if isinstance(indexes, list) else []:
        options = {key: index[key] for key in ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression")
                   if key in index}
        ensure_index(collection, list(index["key"].items()), name=index["name"], **options)
