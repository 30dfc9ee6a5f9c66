"""Files: every rule of file storage lives here.

Views hand over the principal, plain values and body streams. Bytes always reach storage before metadata: an
upload first records a pending entry (platform collection `file_pending`), writes the object, then inserts the
metadata document and drops the pending entry. A process killed anywhere in between leaves a pending entry, and
`sweep()` removes whatever it left (the object, a half-written multipart upload, or nothing), so a client never
sees metadata without an object, and storage never keeps an object nobody can see. Deletes run the other way
round (pending entry, metadata, object) for the same reason. A finished tus upload's entry is kept, marked
finished, until the upload would have expired, so that a client whose last answer was lost learns from HEAD that
its upload is complete.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from baas import rules as rules_module
from baas.documents.service import etag_matches
from baas.errors import (BaasError, Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge, PreconditionFailed,
                         ServiceUnavailable, UnsupportedMediaType)
from baas.files import thumbs
from baas.files.content import SNIFF_BYTES, sanitize_name, sniff, type_allowed
from baas.files.settings import FileSettings, check_file_rules
from baas.files.streams import BeforeEnd, Metered, Peeked
from baas.projects.service import project_prefix
from baas.query import (DEFAULT_LIMIT, DOCUMENT_ID, MAX_LIMIT, SYSTEM_DATE_FIELDS, CursorCodec, and_filters,
                        check_document_keys, compile_filter, parse_int, parse_json_param, parse_sort, path_value)
from baas.storage.blobs import BlobNotFound
from baas.storage.mongo import ensure_index, find_page
from baas.util import new_revision, utcnow

log = logging.getLogger("baas.files")

FILES = "_files"                 # per project database: one metadata document per file
PENDING = "file_pending"         # platform database: uploads and deletes under way
TASKS = "file_tasks"             # platform database: background work (hashing, deleting a user's files)
USAGE = "file_usage"             # platform database: bytes and count per project
UPLOAD_ID_BYTES = 16
MAX_METADATA_BYTES = 16_384
BUSY_SECONDS = 600               # a PATCH holding an upload longer than this is taken to be dead
RUNNING_HASHES = 1000            # tus uploads whose sha256 so far one process keeps in memory
INTERNAL_FIELDS = ("key",)
UPDATABLE = ("name", "metadata", "public", "_owner")
HASH_PENDING, HASH_DONE = "pending", "done"   # sha256_state of a file
UNFINISHED = {"finished_ts": {"$exists": False}}  # tus entries whose upload is still under way
USER_FILES_PAGE = 100            # files of a deleted user removed per page (the lease is renewed between pages)
# S3 refuses a signature dated more than 15 minutes off its own clock, so a presigned URL may still be accepted
# this long after the expiry this server's clock gave it: its staging object is swept only after that.
PRESIGNED_CLOCK_SKEW_SECONDS = 900


class ChecksumMismatch(BaasError):
    """tus checksum extension: the chunk's bytes do not match Upload-Checksum (status 460)."""
    status = 460


@dataclass
class Download:
    """What the view streams: an object (or thumbnail bytes), or a redirect."""
    file: dict
    key: str | None
    size: int
    content_type: str
    etag: str
    modified: datetime
    data: bytes | None = None
    redirect: str | None = None


@dataclass
class FileQuery:
    filter: str | None = None
    sort: str | None = None
    limit: str | None = None
    cursor: str | None = None


class SettledEntries:
    """Pending entries of finished uploads, removed in batches off the request path.

    An upload's pending entry only matters until its metadata is written; from then on, one left behind is
    harmless (the sweep drops entries whose file is recorded). So the request answers without waiting for that
    delete: a thread of this process removes the entries of many uploads with one delete_many. Entries a killed
    process never removed are the sweep's, as before.
    """

    IDLE_SECONDS = 5.0

    def __init__(self, collection, delay_seconds: float = 0.05, max_batch: int = 500):
        self.collection = collection
        self.delay_seconds = delay_seconds
        self.max_batch = max_batch
        self._ids: list = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, entry_id: str) -> None:
        with self._wake:
            self._ids.append(entry_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="baas-files-settle", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _take(self) -> list | None:
        """The next batch; None after IDLE_SECONDS without one (the thread ends; the next add starts another)."""
        with self._wake:
            if not self._ids:
                self._wake.wait(self.IDLE_SECONDS)
            if not self._ids:
                self._thread = None
                return None
            batch, self._ids = self._ids[:self.max_batch], self._ids[self.max_batch:]
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self._delete(batch)
            time.sleep(self.delay_seconds)  # let the next uploads' entries gather into one delete

    def _delete(self, batch: list) -> None:
        try:
            self.collection.delete_many({"_id": {"$in": batch}})
        except Exception as exc:  # the database is away: the sweep removes these entries later
            log.warning("could not remove %d settled upload entries; the sweep will: %s", len(batch), exc)


def file_key(project_id: str, file_id: str) -> str:
    return f"{project_prefix(project_id)}files/{file_id}"


def staging_key(project_id: str, upload_id: str) -> str:
    """Where a presigned PUT lands: never the file's own key, which only the server writes."""
    return f"{project_prefix(project_id)}staging/{upload_id}"


def thumbs_prefix(project_id: str, file_id: str) -> str:
    return f"{project_prefix(project_id)}thumbs/{file_id}/"


def _creator(principal) -> str:
    if principal.is_server:
        return "server"
    return f"user:{principal.user_id}" if principal.user else "client"


def check_metadata(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("'metadata' must be a JSON object.", errors={"metadata": ["Must be an object."]})
    check_document_keys(value, "metadata")
    if len(orjson.dumps(value)) > MAX_METADATA_BYTES:
        raise Invalid(f"'metadata' is larger than {MAX_METADATA_BYTES} bytes.", errors={"metadata": ["Too large."]})
    return value


def parse_public(value) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no", ""):
        return value.lower() in ("true", "1", "yes")
    raise Invalid("'public' is true or false.", errors={"public": ["Not a boolean."]})


def parse_metadata_text(text: str | None) -> dict:
    if text is None or text == "":
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Invalid("'metadata' must be a JSON object.", errors={"metadata": ["Not JSON."]}) from None
    return check_metadata(value)


class FileService:
    def __init__(self, mongo, blobs, projects, hooks, config: dict, metrics=None):
        self.mongo = mongo
        self.metrics = metrics  # baas.observability.metrics.Metrics: file bytes in and out
        self.blobs = blobs
        self.projects = projects
        self.hooks = hooks
        self.config = config
        self.cursors = CursorCodec(config["jwt"]["secret"])
        self.pending = mongo.platform[PENDING]
        self.tasks = mongo.platform[TASKS]
        self.settled = SettledEntries(self.pending)
        # Upload steps that may overlap with receiving the body (threads start on first use).
        self._alongside = ThreadPoolExecutor(8, thread_name_prefix="baas-files-io")
        self.usage_collection = mongo.platform[USAGE]
        self._prepared: dict = {}
        # upload id -> (offset, sha256 of the bytes before it): see tus_append.
        self._running_hashes: OrderedDict = OrderedDict()
        self._running_lock = threading.Lock()
        self.on_storage_error = None  # tests watch storage failures through this
        self.read_backs = 0  # objects hashed by reading them back, in background work (tests watch this)
        files = config["files"]
        self.thumbnails = thumbs.RenderPool(files["thumbnail_workers"], files["thumbnail_queue"])

    def ensure_indexes(self) -> None:
        ensure_index(self.pending, [("expires_ts", 1)], name="expires_ts")
        ensure_index(self.pending, [("project_id", 1)], name="project_id")
        ensure_index(self.pending, [("file_id", 1)], name="file_id")
        ensure_index(self.tasks, [("due_ts", 1)], name="due_ts")
        ensure_index(self.tasks, [("project_id", 1)], name="project_id")

    def _files(self, project_id: str):
        return self.mongo.project_db(project_id)[FILES]

    def settings(self, project) -> FileSettings:
        return FileSettings.of(project, self.config)

    # --- access ----------------------------------------------------------------------------------------------

    def _rule(self, settings: FileSettings, action: str):
        cache_key = orjson.dumps(settings.rules, option=orjson.OPT_SORT_KEYS)
        prepared = self._prepared.get(cache_key)
        if prepared is None:
            if len(self._prepared) > 1000:
                self._prepared.clear()
            prepared = self._prepared[cache_key] = {
                name: rules_module.prepare_rule(rule, SYSTEM_DATE_FIELDS) for name, rule in settings.rules.items()}
        return prepared.get(action, "none")

    def _access(self, principal, settings: FileSettings, action: str):
        return rules_module.evaluate(self._rule(settings, action), principal, action)

    def _allowed(self, principal, settings: FileSettings, action: str):
        access = self._access(principal, settings, action)
        if not access.allowed:
            raise Forbidden(access.reason.replace("in this collection", "for files"))
        return access

    def _read_filter(self, principal, settings: FileSettings) -> dict | None:
        """Files the caller may read: what the read rule allows, and public files."""
        access = self._access(principal, settings, "read")
        if access.unconditional:
            return None
        if access.allowed:
            return {"$or": [access.filter, {"public": True}]}
        return {"public": True}

    @staticmethod
    def _project(principal):
        if principal.project is None:
            raise NotFound("No project.")
        return principal.project

    # --- storage faults --------------------------------------------------------------------------------------

    @contextmanager
    def storage(self):
        """Storage that does not answer becomes a 503 in the one error format; details go to the log only."""
        try:
            yield
        except BlobNotFound:
            raise
        except self.blobs.errors as exc:
            log.warning("file storage failed: %s", exc)
            if self.on_storage_error is not None:
                self.on_storage_error(exc)
            raise ServiceUnavailable("File storage is unavailable right now; try again shortly.") from None

    # --- pending entries -------------------------------------------------------------------------------------

    def _pending_insert(self, entry: dict, lifetime_seconds: float) -> dict:
        now = time.time()
        entry = {**entry, "started_ts": now, "expires_ts": now + lifetime_seconds, "busy_until_ts": 0.0}
        self.pending.insert_one(entry)
        return entry

    def _discard(self, project_id: str, entry_id: str, key: str) -> None:
        """Undo an upload that failed: remove its object, then its pending entry. If storage is down the entry
        stays, and the sweep finishes the job."""
        try:
            self.blobs.delete(key)
        except self.blobs.errors as exc:
            log.warning("could not remove %s after a failed upload; the sweep will: %s", key, exc)
            return
        self.pending.delete_one({"_id": entry_id})

    # --- uploads ---------------------------------------------------------------------------------------------

    def _begin_create(self, principal):
        principal.require_scope("files:write")
        project = self._project(principal)
        settings = self.settings(project)
        access = self._allowed(principal, settings, "create")
        return project, settings, access

    def upload(self, principal, source, length: int | None, declared_type: str | None, describe) -> dict:
        """Store a file streamed from `source`; `describe()` gives its {name, public, metadata} once the bytes are
        stored (form fields may follow the file part)."""
        project, settings, access = self._begin_create(principal)
        if length is not None:
            self._check_size(settings, length)
        file_id = str(ObjectId())
        key = file_key(project.id, file_id)
        entry_id = secrets.token_hex(UPLOAD_ID_BYTES)
        grace = self.config["files"]["pending_grace_minutes"] * 60
        # The pending entry is written while the body arrives; the adapter cannot complete the object before it
        # reads the body's end, and BeforeEnd waits for the entry there: it still precedes the object.
        pending = self._alongside.submit(self._pending_insert, {
            "_id": entry_id, "kind": "upload", "project_id": project.id, "file_id": file_id, "key": key}, grace)
        try:
            metered = Metered(source, settings.max_file_bytes)
            with self.storage():
                head = Peeked(metered, SNIFF_BYTES)
                content_type = sniff(head.head, declared_type)
                self._check_type(settings, content_type)
                # metered.hexdigest is complete once the stream ended, which is when the adapter asks for it.
                self.blobs.put(key, BeforeEnd(head, pending.result), length if length is not None else -1,
                               content_type, sha256=metered.hexdigest)
            fields = describe()
            doc = self._new_doc(principal, file_id, key, fields, metered.size, content_type, metered.hexdigest())
            self._record(principal, project, access, doc)
        except BaseException:
            if pending.exception() is None:  # waits: the entry must not land after the clean-up below
                self._discard(project.id, entry_id, key)
            raise
        self.settled.add(entry_id)
        self.hooks.after("baas_after_file_write", principal=principal, action="create", file=doc, previous=None)
        return self.output(doc)

    @staticmethod
    def _check_type(settings: FileSettings, content_type: str) -> None:
        if not type_allowed(content_type, settings.allowed_types, settings.blocked_types):
            raise UnsupportedMediaType(f"Files of type {content_type} (from their content) are not accepted by "
                                       f"this project.", errors={"file": [f"Refused type: {content_type}"]})

    def _new_doc(self, principal, file_id: str, key: str, fields: dict, size: int, content_type: str,
                 sha256: str | None) -> dict:
        now = utcnow()
        return {"_id": file_id, "name": sanitize_name(fields.get("name")), "size": size,
                "content_type": content_type, "sha256": sha256,
                "sha256_state": HASH_DONE if sha256 else HASH_PENDING, "public": parse_public(fields.get("public")),
                "metadata": check_metadata(fields.get("metadata")), "_owner": principal.user_id,
                "_created": now, "_updated": now, "_rev": new_revision(), "key": key}

    def _record(self, principal, project, access, doc: dict) -> None:
        """The metadata step of an upload, once its object is stored."""
        if access.filter and not rules_module.matches(access.filter, self.output(dict(doc))):
            raise Forbidden("The new file does not satisfy the 'create' rule for files.")
        self.hooks.before("baas_before_file_write", principal=principal, action="create", file=doc, previous=None)
        doc["name"] = sanitize_name(doc.get("name"))
        doc["metadata"] = check_metadata(doc.get("metadata"))
        # The usage counter is written beside the metadata, not after it: the request waits for one round trip
        # instead of two. Neither write is transactional with the other (as before, when a kill between them left
        # the counter short); a failed insert takes its count back.
        counted = self._alongside.submit(self._count, project.id, doc["size"], 1)
        try:
            self._files(project.id).insert_one(doc)
        except BaseException:
            if counted.exception() is None:
                self._count_back(project.id, doc["size"])
            raise
        if counted.exception() is not None:  # the file is stored and recorded: failing now would orphan its metadata
            log.warning("file usage of project %s not counted for %s: %s", project.id, doc["_id"],
                        counted.exception())
        if self.metrics is not None:
            self.metrics.file_bytes("in", doc["size"])

    def _count(self, project_id: str, size: int, count: int) -> None:
        self.usage_collection.update_one({"_id": project_id}, {"$inc": {"bytes": size, "count": count}},
                                         upsert=True)

    def _count_back(self, project_id: str, size: int) -> None:
        try:
            self._count(project_id, -size, -1)
        except Exception as exc:  # the database went away between the two writes
            log.warning("file usage of project %s is %d bytes too high: %s", project_id, size, exc)

    # --- metadata --------------------------------------------------------------------------------------------

    @staticmethod
    def output(doc: dict) -> dict:
        for field in INTERNAL_FIELDS:
            doc.pop(field, None)
        doc.setdefault("sha256_state", HASH_DONE if doc.get("sha256") else HASH_PENDING)
        return doc

    @staticmethod
    def content_etag(doc: dict) -> str:
        """The ETag of a file's bytes: their sha256, or (until background work hashed them) the file id, which
        also names one content forever."""
        return doc["sha256"] if doc.get("sha256") else f"{doc['_id']}.{doc['size']}"

    def _find(self, project_id: str, file_id: str, access_filter: dict | None) -> dict | None:
        if not isinstance(file_id, str) or not DOCUMENT_ID.match(file_id):
            return None
        return self._files(project_id).find_one(and_filters({"_id": file_id}, access_filter))

    def _readable(self, principal, file_id: str) -> dict:
        project = self._project(principal)
        principal.require_scope("files:read")
        doc = self._find(project.id, file_id, self._read_filter(principal, self.settings(project)))
        if doc is None:
            raise NotFound(f"No file '{file_id}'.")
        return doc

    def get(self, principal, file_id: str) -> dict:
        return self.output(self._readable(principal, file_id))

    def list(self, principal, params: FileQuery) -> dict:
        principal.require_scope("files:read")
        project = self._project(principal)
        settings = self.settings(project)
        list_access = self._allowed(principal, settings, "list")
        query = compile_filter(parse_json_param(params.filter, "filter"), SYSTEM_DATE_FIELDS) if params.filter \
            else {}
        sort = parse_sort(params.sort)
        limit = parse_int(params.limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        base = and_filters(query, list_access.filter, self._read_filter(principal, settings))
        scope = f"{project.id}/{FILES}/{hashlib.sha256((params.filter or '').encode()).hexdigest()[:16]}"
        page = base
        if params.cursor:
            from baas.query import keyset_filter

            page = and_filters(base, keyset_filter(sort, self.cursors.decode(params.cursor, scope, sort)))
        items = find_page(self._files(project.id), page, None, sort, 0, limit + 1)
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            next_cursor = self.cursors.encode(scope, sort, [path_value(items[-1], field) for field, _ in sort])
        return {"items": [self.output(item) for item in items], "next_cursor": next_cursor}

    def _load_for_write(self, principal, file_id: str, action: str):
        principal.require_scope("files:write")
        project = self._project(principal)
        settings = self.settings(project)
        access = self._allowed(principal, settings, action)
        doc = self._find(project.id, file_id, access.filter)
        if doc is None:
            if access.filter and self._find(project.id, file_id, self._read_filter(principal, settings)):
                raise Forbidden(f"You may read this file but not {action} it.")
            raise NotFound(f"No file '{file_id}'.")
        return project, access, doc

    def update(self, principal, file_id: str, body, if_match: str | None = None) -> dict:
        if not isinstance(body, dict) or not body:
            raise Invalid("Send a JSON object with name, metadata or public.")
        unknown = set(body) - set(UPDATABLE)
        if unknown:
            raise Invalid(f"Only {', '.join(UPDATABLE)} can be changed.", errors={k: ["Unknown field."] for k in unknown})
        project, access, previous = self._load_for_write(principal, file_id, "update")
        if not etag_matches(if_match, previous.get("_rev")):
            raise PreconditionFailed("The file changed since you read it (If-Match does not match its ETag).")
        doc = dict(previous)
        if "name" in body:
            if not isinstance(body["name"], str):
                raise Invalid("'name' is a string.", errors={"name": ["Not a string."]})
            doc["name"] = sanitize_name(body["name"])
        if "metadata" in body:
            doc["metadata"] = check_metadata(body["metadata"])
        if "public" in body:
            if not isinstance(body["public"], bool):
                raise Invalid("'public' is true or false.", errors={"public": ["Not a boolean."]})
            doc["public"] = body["public"]
        if "_owner" in body:
            # Moving ownership is an admin act (Parse's master key, Appwrite's server SDK): owner-based rules
            # would otherwise let a user hand files to, or take them from, someone else.
            if not principal.is_server:
                raise Forbidden("Only the server key can change a file's owner.")
            owner = body["_owner"]
            if owner is not None and (not isinstance(owner, str) or not DOCUMENT_ID.match(owner)):
                raise Invalid("'_owner' is a user id or null.", errors={"_owner": ["Not a user id."]})
            doc["_owner"] = owner
        doc["_updated"] = utcnow()
        doc["_rev"] = new_revision()
        if access.filter and not rules_module.matches(access.filter, self.output(dict(doc))):
            raise Forbidden("The changed file would no longer satisfy the 'update' rule for files.")
        self.hooks.before("baas_before_file_write", principal=principal, action="update", file=doc,
                          previous=previous)
        # A whole-document replace guarded by the revision read: concurrent writers never overwrite silently.
        result = self._files(project.id).replace_one({"_id": file_id, "_rev": previous["_rev"]}, doc)
        if not result.matched_count:
            raise PreconditionFailed("The file changed while it was being updated; read it again and retry.")
        self.hooks.after("baas_after_file_write", principal=principal, action="update", file=doc,
                         previous=previous)
        return self.output(doc)

    def delete(self, principal, file_id: str, if_match: str | None = None) -> None:
        project, _, previous = self._load_for_write(principal, file_id, "delete")
        if not etag_matches(if_match, previous.get("_rev")):
            raise PreconditionFailed("The file changed since you read it (If-Match does not match its ETag).")
        self.hooks.before("baas_before_file_write", principal=principal, action="delete", file=None,
                          previous=previous)
        if not self._remove(project.id, previous):
            raise PreconditionFailed("The file changed while it was being deleted; read it again and retry.")
        self.hooks.after("baas_after_file_write", principal=principal, action="delete", file=None,
                         previous=previous)

    def _remove(self, project_id: str, doc: dict) -> bool:
        """Metadata first, then the object and its thumbnails; a pending entry covers a crash in between."""
        entry_id = secrets.token_hex(UPLOAD_ID_BYTES)
        self._pending_insert({"_id": entry_id, "kind": "delete", "project_id": project_id, "file_id": doc["_id"],
                              "key": doc["key"]}, 0)
        if not self._files(project_id).delete_one({"_id": doc["_id"], "_rev": doc["_rev"]}).deleted_count:
            self.pending.delete_one({"_id": entry_id})
            return False
        self._count(project_id, -doc["size"], -1)
        try:
            self._delete_objects(project_id, doc["_id"], doc["key"])
        except self.blobs.errors as exc:
            log.warning("file %s: metadata deleted, object left for the sweep: %s", doc["_id"], exc)
            return True
        self.pending.delete_one({"_id": entry_id})
        return True

    def _delete_objects(self, project_id: str, file_id: str, key: str) -> None:
        self.blobs.delete(key)
        self.blobs.delete_prefix(thumbs_prefix(project_id, file_id))

    # --- downloads -------------------------------------------------------------------------------------------

    def download(self, principal, file_id: str, thumb: str | None = None, fit: str | None = None,
                 disposition_headers=None) -> Download:
        doc = self._readable(principal, file_id)
        modified = doc["_created"]
        if thumb is None:
            settings = self.settings(principal.project)
            download = Download(self.output(dict(doc)), doc["key"], doc["size"], doc["content_type"],
                                f'"{self.content_etag(doc)}"', modified)
            if settings.presigned_downloads and disposition_headers is not None:
                with self.storage():
                    download.redirect = self.blobs.presigned_get_url(
                        doc["key"], self.config["files"]["presigned_seconds"], disposition_headers(download))
            return download
        files = self.config["files"]
        width, height, fit = thumbs.parse_request(thumb, fit, files["thumbnail_sizes"])
        if doc["content_type"] not in thumbs.THUMBNAIL_TYPES:
            raise Invalid(f"Files of type {doc['content_type']} have no thumbnails.",
                          errors={"thumb": ["Not an image."]})
        key = thumbs_prefix(principal.project.id, file_id) + f"{width}x{height}-{fit}"
        etag = f'"{self.content_etag(doc)[:40]}-{width}x{height}-{fit}"'
        with self.storage():
            try:
                info = self.blobs.stat(key)
                return Download(self.output(dict(doc)), key, info.size, info.content_type, etag, modified)
            except BlobNotFound:
                pass
        if doc["size"] > files["thumbnail_max_bytes"]:
            raise Invalid(f"The image is larger than the {files['thumbnail_max_bytes']} bytes thumbnails are "
                          f"made from.", errors={"thumb": ["Image too large."]})
        data, content_type = self.thumbnails.run(key, self._make_thumbnail, doc["key"], key, width, height, fit)
        return Download(self.output(dict(doc)), key, len(data), content_type, etag, modified, data=data)

    def _make_thumbnail(self, original_key: str, key: str, width: int, height: int, fit: str) -> tuple[bytes, str]:
        """Runs on a thumbnail pool thread: decode, resize, and cache beside the original (deleted with it)."""
        with self.storage():
            original = b"".join(self._open(original_key))
            data, content_type = thumbs.render(original, width, height, fit,
                                               self.config["files"]["thumbnail_max_pixels"])
            self.blobs.put(key, io.BytesIO(data), len(data), content_type)
        return data, content_type

    def _open(self, key: str, offset: int = 0, length: int | None = None):
        """The object's chunks; an object removed behind baas's back (a bucket lifecycle rule, an operator's
        clean-up) is a missing file to the client, not a server error."""
        try:
            return self.blobs.open(key, offset, length)
        except BlobNotFound:
            log.warning("file content %s is missing from storage", key)
            raise NotFound("The file's content is no longer stored.") from None

    def stream(self, key: str, offset: int = 0, length: int | None = None):
        """The object's bytes in chunks. Storage failing mid-way ends the body early (the status is already
        sent), which the client sees as a short read against Content-Length."""
        with self.storage():
            chunks = self._open(key, offset, length)

        def guarded():
            try:
                for chunk in chunks:
                    if self.metrics is not None:
                        self.metrics.file_bytes("out", len(chunk))
                    yield chunk
            except self.blobs.errors as exc:
                log.warning("file storage failed while streaming %s: %s", key, exc)
        return guarded()

    # --- resumable uploads (tus) -----------------------------------------------------------------------------

    def tus_create(self, principal, length: int | None, metadata: dict) -> dict:
        project, settings, _ = self._begin_create(principal)
        if length is None:
            raise Invalid("Send Upload-Length: this server does not take uploads of deferred length.",
                          errors={"Upload-Length": ["Missing."]})
        self._check_size(settings, length)
        fields = {"name": metadata.get("filename") or metadata.get("name"),
                  "public": parse_public(metadata.get("public")),
                  "metadata": parse_metadata_text(metadata.get("metadata"))}
        sanitize_name(fields["name"])
        declared = metadata.get("filetype") or metadata.get("content_type")
        file_id = str(ObjectId())
        key = file_key(project.id, file_id)
        with self.storage():
            state = self.blobs.start_append(key, "application/octet-stream")
        entry = {"_id": secrets.token_hex(UPLOAD_ID_BYTES), "kind": "tus", "project_id": project.id,
                 "file_id": file_id, "key": key, "length": length, "offset": 0, "state": state,
                 "fields": fields, "declared_type": declared, "creator": _creator(principal),
                 "owner": principal.user_id}
        entry = self._pending_insert(entry, self.config["files"]["tus_expiry_hours"] * 3600)
        if length == 0:
            # Complete as created: tus-js-client sends no PATCH for an empty file and reports it uploaded as soon
            # as the creation answers, so the file must exist by then.
            self._keep_running_hash(entry["_id"], 0, hashlib.sha256())
            self._tus_finish(principal, entry)
            entry["finished_ts"] = time.time()
        return entry

    def tus_entry(self, principal, upload_id: str) -> dict:
        principal.require_scope("files:write")
        project = self._project(principal)
        entry = self.pending.find_one({"_id": upload_id, "kind": "tus", "project_id": project.id}) \
            if isinstance(upload_id, str) else None
        if entry is None or not (principal.is_server or entry["creator"] == _creator(principal)):
            raise NotFound(f"No upload '{upload_id}'.")
        if entry["expires_ts"] < time.time():
            raise NotFound(f"The upload '{upload_id}' expired.")
        return entry

    def tus_append(self, principal, upload_id: str, offset: int, stream, checksum: str | None) -> tuple[dict, str | None]:
        """Append a PATCH body at `offset`. Returns (entry with the new offset, the file's id once complete)."""
        entry = self.tus_entry(principal, upload_id)
        if offset != entry["offset"]:
            raise Conflict(f"Upload-Offset is {offset} but the upload is at {entry['offset']}; ask with HEAD.",
                           headers={"Upload-Offset": str(entry["offset"])})
        if entry.get("finished_ts"):
            # A repeat of the last PATCH, its answer lost: it adds nothing, and the upload is already a file.
            if stream.read(1):
                raise PayloadTooLarge(f"The body goes past Upload-Length ({entry['length']} bytes).")
            return entry, entry["file_id"]
        verify = self._checksum(checksum)
        now = time.time()
        # One writer at a time; a writer that died frees the upload after BUSY_SECONDS.
        taken = self.pending.update_one({"_id": upload_id, "offset": offset, "busy_until_ts": {"$lt": now},
                                         **UNFINISHED},
                                        {"$set": {"busy_until_ts": now + BUSY_SECONDS}})
        if not taken.matched_count:
            raise Conflict("Another request is writing to this upload; retry after it ends.")
        remaining = entry["length"] - offset
        digest = verify[0] if verify else None
        # The file's sha256 is kept as the bytes arrive, so completion need not read the object back. hashlib's
        # state cannot be stored, so it lives in this process only: it is used when this process saw every byte
        # before `offset`; an upload whose PATCHes reached other processes (or a restart) is read back once at
        # completion instead. Offsets only grow and each is committed once (the update below is guarded by the
        # offset), so a running hash at the upload's current offset covers exactly the stored bytes.
        running = self._take_running_hash(upload_id, offset)
        before = running.copy() if running is not None else None  # kept if this PATCH stores nothing

        class Hashing:
            def read(self_inner, size=-1):
                data = stream.read(size)
                if digest is not None:
                    digest.update(data)
                if running is not None:
                    running.update(data)
                return data

        def check():
            if stream.read(1):
                raise PayloadTooLarge(f"The body goes past Upload-Length ({entry['length']} bytes).")
            if verify and not getattr(stream, "cut", False) and digest.digest() != verify[1]:
                raise ChecksumMismatch("The chunk does not match Upload-Checksum; it was discarded.")
            if verify and getattr(stream, "cut", False):
                raise ChecksumMismatch("The chunk was cut short, so it cannot match Upload-Checksum; discarded.")

        try:
            with self.storage():
                state, written = self.blobs.append(entry["key"], entry["state"], offset, Hashing(), remaining, check)
        except BaseException:
            self.pending.update_one({"_id": upload_id}, {"$set": {"busy_until_ts": 0.0}})
            if before is not None:
                self._keep_running_hash(upload_id, offset, before)
            raise
        new_offset = offset + written
        committed = self.pending.update_one({"_id": upload_id, "offset": offset},
                                            {"$set": {"state": state, "offset": new_offset, "busy_until_ts": 0.0}})
        if running is not None and committed.matched_count:
            self._keep_running_hash(upload_id, new_offset, running)
        entry.update(state=state, offset=new_offset)
        done = None
        if new_offset == entry["length"]:
            done = self._tus_finish(principal, entry)
        return entry, done

    def _take_running_hash(self, upload_id: str, offset: int):
        """The sha256 of the upload's first `offset` bytes if this process hashed all of them, else None."""
        with self._running_lock:
            known = self._running_hashes.pop(upload_id, None)
        if offset == 0:
            return hashlib.sha256()
        if known is not None and known[0] == offset:
            return known[1]
        return None

    def _keep_running_hash(self, upload_id: str, offset: int, digest) -> None:
        with self._running_lock:
            self._running_hashes[upload_id] = (offset, digest)
            while len(self._running_hashes) > RUNNING_HASHES:
                self._running_hashes.popitem(last=False)

    def _finished_hash(self, upload_id: str, size: int) -> str | None:
        with self._running_lock:
            known = self._running_hashes.pop(upload_id, None)
        return known[1].hexdigest() if known is not None and known[0] == size else None

    @staticmethod
    def _checksum(header: str | None):
        if not header:
            return None
        algorithm, _, encoded = header.strip().partition(" ")
        algorithm = algorithm.lower()
        if algorithm not in ("sha1", "sha256", "md5"):
            raise Invalid(f"Upload-Checksum algorithm {algorithm!r} is not supported; use sha1, sha256 or md5.",
                          errors={"Upload-Checksum": ["Unsupported algorithm."]})
        try:
            expected = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("Upload-Checksum is '<algorithm> <base64 digest>'.",
                          errors={"Upload-Checksum": ["Not base64."]}) from None
        return hashlib.new(algorithm), expected

    def tus_finish_if_complete(self, principal, entry: dict) -> str | None:
        """The file id of a complete upload for HEAD, recording the file first if its bytes all arrived but the
        process died before it was recorded."""
        if entry.get("finished_ts"):
            return entry["file_id"]
        if entry["offset"] == entry["length"]:
            return self._tus_finish(principal, entry)
        return None

    def _tus_finish(self, principal, entry: dict) -> str:
        project = self._project(principal)
        settings = self.settings(project)
        key = entry["key"]
        with self.storage():
            try:
                self.blobs.stat(key)
            except BlobNotFound:
                self.blobs.finish_append(key, entry["state"], "application/octet-stream")
        return self._adopt(principal, entry, settings)

    def _inspect(self, key: str, settings: FileSettings, declared_type: str | None):
        """The stored object's stat and content type, sniffed from a ranged read; 413/415 when refused."""
        with self.storage():
            info = self.blobs.stat(key)
            self._check_size(settings, info.size)
            head = b"".join(self.blobs.open(key, 0, SNIFF_BYTES)) if info.size else b""
        content_type = sniff(head, declared_type)
        self._check_type(settings, content_type)
        return info, content_type

    @staticmethod
    def _check_size(settings: FileSettings, size: int) -> None:
        if size > settings.max_file_bytes:
            raise PayloadTooLarge(f"The file is larger than this project's limit of {settings.max_file_bytes} "
                                  f"bytes.")

    def _record_adopted(self, principal, entry: dict, settings: FileSettings, info, content_type: str,
                        sha256: str | None) -> dict:
        """The metadata of an object written outside a metered request (tus, presigned PUT), once checked."""
        project = self._project(principal)
        access = self._allowed(principal, settings, "create")
        if sha256 is None:
            # The server never saw these bytes (presigned PUT), or not all of them (tus across processes):
            # background work reads the object back to hash it, so this request answers at once. The task
            # is queued before the metadata exists, so a crash in between cannot leave a file never hashed.
            self._enqueue(f"hash:{project.id}:{entry['file_id']}", "hash", project.id, file_id=entry["file_id"])
        doc = self._new_doc(principal, entry["file_id"], entry["key"], entry["fields"], info.size, content_type,
                            sha256)
        doc["_owner"] = entry.get("owner")
        try:
            self._record(principal, project, access, doc)
        except DuplicateKeyError:
            doc = self._files(project.id).find_one({"_id": entry["file_id"]})  # a concurrent finish recorded it
        return doc

    def _adopt(self, principal, entry: dict, settings: FileSettings) -> dict:
        """Record a finished tus upload: check size and type from its bytes, or remove it."""
        try:
            info, content_type = self._inspect(entry["key"], settings, entry.get("declared_type"))
            sha256 = self._finished_hash(entry["_id"], info.size)
            doc = self._record_adopted(principal, entry, settings, info, content_type, sha256)
        except BaseException:
            self._discard(entry["project_id"], entry["_id"], entry["key"])
            raise
        # The entry stays, marked finished, until the upload would have expired: a client whose answer to the last
        # PATCH was lost asks HEAD, is told the upload is complete (and its file id), and does not send the whole
        # file again as a new upload. The sweep removes it at expiry.
        self.pending.update_one({"_id": entry["_id"]}, {"$set": {"finished_ts": time.time(), "busy_until_ts": 0.0},
                                                        "$unset": {"state": ""}})
        self.hooks.after("baas_after_file_write", principal=principal, action="create", file=doc, previous=None)
        return doc["_id"]

    def tus_terminate(self, principal, upload_id: str) -> None:
        """Abandon an upload and its bytes. A finished upload is a file by now: only the upload goes, the file is
        deleted as files are (DELETE /v1/files/{id})."""
        entry = self.tus_entry(principal, upload_id)
        if not entry.get("finished_ts"):
            with self.storage():
                self.blobs.abort_append(entry["key"], entry["state"])
        self.pending.delete_one({"_id": upload_id})

    # --- direct transfer (presigned PUT on S3) ---------------------------------------------------------------

    def direct_start(self, principal, body: dict) -> dict:
        project, settings, _ = self._begin_create(principal)
        size = body.get("size")
        if size is not None:
            self._check_size(settings, size)
        fields = {"name": body.get("name"), "public": body.get("public", False),
                  "metadata": check_metadata(body.get("metadata"))}
        file_id = str(ObjectId())
        upload_id = secrets.token_hex(UPLOAD_ID_BYTES)
        # The URL writes a staging object; completion checks it and copies it to the file's key. The URL stays
        # valid after completion, so bytes PUT later only replace the staging object, never the recorded file.
        staging = staging_key(project.id, upload_id)
        seconds = self.config["files"]["direct_upload_minutes"] * 60
        with self.storage():
            url = self.blobs.presigned_put_url(staging, seconds)
        if url is None:
            raise Conflict("Direct transfer needs S3 storage; this server keeps files on local disk. Upload through "
                           "POST /v1/files or tus instead.")
        # The entry outlives the URL (expires_ts), whether the upload was completed or not (closed_ts), so the
        # sweep removes whatever a late PUT leaves in staging.
        url_expires_ts = time.time() + seconds
        entry = self._pending_insert({"_id": upload_id, "kind": "direct", "project_id": project.id,
                                      "file_id": file_id, "key": file_key(project.id, file_id),
                                      "staging_key": staging, "url_expires_ts": url_expires_ts, "closed_ts": 0.0,
                                      "fields": fields, "declared_type": body.get("content_type"),
                                      "creator": _creator(principal), "owner": principal.user_id},
                                     seconds + PRESIGNED_CLOCK_SKEW_SECONDS)
        content_type = body.get("content_type") or "application/octet-stream"
        return {"id": entry["_id"], "file_id": file_id, "url": url, "method": "PUT",
                "headers": {"Content-Type": content_type},
                "expires_at": datetime.fromtimestamp(url_expires_ts, timezone.utc)}

    def direct_complete(self, principal, upload_id: str) -> dict:
        principal.require_scope("files:write")
        project = self._project(principal)
        entry = self._claim_direct(principal, project, upload_id)
        settings = self.settings(project)
        try:
            doc = self._finish_direct(principal, project, settings, entry)
        except (ServiceUnavailable, Conflict):
            self._release_direct(entry)  # storage away, or nothing PUT yet: the client may complete again
            raise
        except BaasError:
            self._close_direct(entry, keep_file=False)  # refused (size, type, rules, a plugin): the upload is over
            raise
        except BaseException:
            self._release_direct(entry)
            raise
        self._close_direct(entry, keep_file=True)
        self.hooks.after("baas_after_file_write", principal=principal, action="create", file=doc, previous=None)
        return self.output(doc)

    def _claim_direct(self, principal, project, upload_id: str) -> dict:
        """The upload's entry, held by this request (one completion at a time: a second one could otherwise copy
        bytes PUT in between over a file the first had just checked)."""
        entry = self.pending.find_one({"_id": upload_id, "kind": "direct", "project_id": project.id}) \
            if isinstance(upload_id, str) else None
        if entry is None or "staging_key" not in entry or entry["closed_ts"] \
                or not (principal.is_server or entry["creator"] == _creator(principal)) \
                or entry["url_expires_ts"] < time.time():
            # (Entries without a staging key were made by an older version that presigned the file's own key.)
            raise NotFound(f"No pending upload '{upload_id}'.")
        now = time.time()
        # A completion still running after BUSY_SECONDS is taken to be dead and another may start: copies of
        # files within max_file_bytes take S3 far less than that.
        taken = self.pending.update_one({"_id": upload_id, "closed_ts": 0.0, "busy_until_ts": {"$lt": now}},
                                        {"$set": {"busy_until_ts": now + BUSY_SECONDS}})
        if not taken.matched_count:
            raise Conflict("Another request is completing this upload; retry after it ends.")
        return entry

    def _finish_direct(self, principal, project, settings: FileSettings, entry: dict) -> dict:
        recorded = self._files(project.id).find_one({"_id": entry["file_id"]})
        if recorded is not None:
            return recorded  # an earlier completion recorded the file and died before closing the upload
        try:
            with self.storage():
                staged = self.blobs.stat(entry["staging_key"])
        except BlobNotFound:
            raise Conflict("Nothing was uploaded to the presigned URL yet; PUT the file there first.") from None
        self._check_size(settings, staged.size)  # before copying: an oversized object is never copied
        with self.storage():
            try:
                self.blobs.copy(entry["staging_key"], entry["key"])
            except BlobNotFound:
                raise Conflict("The uploaded object disappeared; PUT the file again.") from None
        # Everything recorded comes from the copy, which only this server writes: bytes PUT to the staging key
        # meanwhile (the URL is still valid) either made it into the copy, and are checked here, or did not.
        info, content_type = self._inspect(entry["key"], settings, entry.get("declared_type"))
        return self._record_adopted(principal, entry, settings, info, content_type, None)

    def _release_direct(self, entry: dict) -> None:
        try:
            self.pending.update_one({"_id": entry["_id"]}, {"$set": {"busy_until_ts": 0.0}})
        except Exception as exc:  # the database is away: the claim runs out after BUSY_SECONDS
            log.warning("could not release direct upload %s: %s", entry["_id"], exc)

    def _close_direct(self, entry: dict, keep_file: bool) -> None:
        """End a direct upload: no completion after this. Its staging object goes now (and again at the sweep,
        after the URL died, in case a late PUT recreated it); a refused upload's copy goes too."""
        self.pending.update_one({"_id": entry["_id"]}, {"$set": {"closed_ts": time.time(), "busy_until_ts": 0.0}})
        victims = [entry["staging_key"]] if keep_file else [entry["staging_key"], entry["key"]]
        for key in victims:
            try:
                self.blobs.delete(key)
            except self.blobs.errors as exc:
                log.warning("could not remove %s of direct upload %s; the sweep will: %s", key, entry["_id"], exc)

    # --- settings, usage, users, projects --------------------------------------------------------------------

    def get_settings(self, principal) -> dict:
        principal.require_server()
        return self._describe_settings(self._project(principal))

    def _describe_settings(self, project) -> dict:
        settings = self.settings(project)
        return {"max_file_bytes": settings.max_file_bytes, "allowed_types": settings.allowed_types,
                "rules": settings.rules, "presigned_downloads": settings.presigned_downloads,
                "delete_with_user": settings.delete_with_user}

    def update_settings(self, principal, changes: dict) -> dict:
        principal.require_server()
        project = self._project(principal)
        if "rules" in changes:
            changes = {**changes, "rules": check_file_rules(changes["rules"])}
        current = dict((self.projects.get(project.id).get("settings") or {}).get("files") or {})
        current.update(changes)
        self.projects.update(project.id, settings={"files": current})
        return self._describe_settings(self.projects.info(project.id))

    def usage(self, project_id: str) -> dict:
        self.projects.get(project_id)
        doc = self.usage_collection.find_one({"_id": project_id}) or {}
        return {"project_id": project_id, "bytes": int(doc.get("bytes", 0)), "count": int(doc.get("count", 0))}

    # --- platform admin (admin API and `baas files ...`): the project's files with no rules applied ------------

    def _as_admin_of(self, principal, project_id: str):
        from dataclasses import replace

        if not principal.admin:
            raise Forbidden("This needs the platform admin token.")
        return replace(principal, project=self.projects.info(project_id))

    def admin_list(self, principal, project_id: str, params: FileQuery) -> dict:
        return self.list(self._as_admin_of(principal, project_id), params)

    def admin_get(self, principal, project_id: str, file_id: str) -> dict:
        return self.get(self._as_admin_of(principal, project_id), file_id)

    def admin_delete(self, principal, project_id: str, file_id: str) -> None:
        self.delete(self._as_admin_of(principal, project_id), file_id)

    # ----------------------------------------------------------------------------------------------------------

    def delete_user_files(self, project_id: str, user_id: str) -> bool:
        """Called when a user is deleted: when the project says so, their files are queued for background work
        (a user may own many files: the user-delete request must not wait for them). True when queued."""
        settings = FileSettings.of(self.projects.info(project_id), self.config)
        if not settings.delete_with_user:
            return False
        self._enqueue(f"user_files:{project_id}:{user_id}", "user_files", project_id, user_id=user_id)
        return True

    def forget_project(self, project_id: str) -> None:
        """After a project was deleted (its database and objects are gone): its uploads under way and its usage."""
        for entry in self.pending.find({"project_id": project_id, "kind": "tus", **UNFINISHED}):
            try:
                self.blobs.abort_append(entry["key"], entry["state"])
            except self.blobs.errors as exc:
                log.warning("could not abort upload %s of deleted project %s: %s", entry["_id"], project_id, exc)
        # A direct upload's URL outlives the project: its entry stays, closed, so the sweep removes what a late PUT
        # leaves in staging.
        self.pending.delete_many({"project_id": project_id, "kind": {"$ne": "direct"}})
        self.pending.update_many({"project_id": project_id, "kind": "direct"},
                                 {"$set": {"closed_ts": time.time(), "project_deleted": True}})
        self.tasks.delete_many({"project_id": project_id})
        self.usage_collection.delete_one({"_id": project_id})

    # --- background work (baas.files.tasks runs it) -----------------------------------------------------------

    def _enqueue(self, task_id: str, kind: str, project_id: str, **fields) -> None:
        """Queue background work in MongoDB. Ids name the work, so queueing it twice queues it once."""
        try:
            self.tasks.insert_one({"_id": task_id, "kind": kind, "project_id": project_id, **fields,
                                   "due_ts": time.time(), "attempts": 0, "lease_until": 0.0})
        except DuplicateKeyError:
            pass

    def hash_file(self, project_id: str, file_id: str, still_mine=lambda: True) -> bool:
        """Compute and record the sha256 of a file recorded without one. True when nothing is left to do; False to
        try again later (the upload that queued it has not recorded the file yet). `still_mine()` is called
        between chunks: False (the task's lease was lost) stops the work."""
        files = self._files(project_id)
        doc = files.find_one({"_id": file_id})
        if doc is None:
            # Not recorded yet (its upload is still finishing: its pending entry is open), or deleted since.
            return all(entry.get("closed_ts") or entry.get("finished_ts")
                       for entry in self.pending.find({"file_id": file_id}, {"closed_ts": 1, "finished_ts": 1}))
        if doc.get("sha256"):
            return True
        self.read_backs += 1
        digest = hashlib.sha256()
        size = 0
        try:
            for number, chunk in enumerate(self.blobs.open(doc["key"])):
                digest.update(chunk)
                size += len(chunk)
                if number % 256 == 255 and not still_mine():
                    raise TimeoutError(f"lost the lease while hashing file {file_id}")
        except BlobNotFound:
            return True  # deleted meanwhile: its metadata goes with it
        if size != doc["size"]:
            log.warning("file %s of project %s: %d bytes stored, %d recorded at completion", file_id, project_id,
                        size, doc["size"])
        sha256 = digest.hexdigest()
        # A whole-document replace guarded by the revision read (as a PATCH does): a concurrent PATCH is kept,
        # and the hash is written over what it wrote.
        for _ in range(10):
            changed = {**doc, "sha256": sha256, "sha256_state": HASH_DONE, "_rev": new_revision()}
            if files.replace_one({"_id": file_id, "_rev": doc["_rev"]}, changed).matched_count:
                return True
            doc = files.find_one({"_id": file_id})
            if doc is None or doc.get("sha256"):
                return True
        return False

    def remove_owned_files(self, project_id: str, user_id: str, limit: int = USER_FILES_PAGE) -> int:
        """Remove up to `limit` files owned by `user_id` (a deleted user's); returns how many were found."""
        found = list(self._files(project_id).find({"_owner": user_id}).limit(limit))
        for doc in found:
            self._remove(project_id, doc)
        return len(found)

    # --- the sweep -------------------------------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> dict:
        """Remove what expired or dead uploads and interrupted deletes left; safe to run in several processes."""
        now = now or datetime.now(timezone.utc)
        now_ts = now.timestamp()
        report = {"entries": 0, "stale_uploads": 0}
        for entry in list(self.pending.find({"expires_ts": {"$lt": now_ts}}).limit(500)):
            try:
                self._sweep_entry(entry)
                report["entries"] += 1
            except self.blobs.errors as exc:
                log.warning("sweep: storage failed on %s; next time: %s", entry["_id"], exc)
        # Unfinished uploads only: a finished one's entry outlives its parts by up to a day (HEAD answers it).
        live = {entry["key"] for entry in self.pending.find({"kind": "tus", **UNFINISHED}, {"key": 1})}
        grace = timedelta(minutes=self.config["files"]["pending_grace_minutes"])
        try:
            report["stale_uploads"] = self.blobs.abort_stale("projects/", now - grace, keep=live)
        except self.blobs.errors as exc:
            log.warning("sweep: could not list half-written uploads: %s", exc)
        return report

    def _sweep_entry(self, entry: dict) -> None:
        project_id, key = entry["project_id"], entry["key"]
        recorded = not entry.get("project_deleted") \
            and self._files(project_id).find_one({"_id": entry["file_id"]}, {"_id": 1}) is not None
        if entry.get("staging_key"):  # a direct upload, its URL dead: whatever was PUT there, completed or not
            self.blobs.delete(entry["staging_key"])
        if entry["kind"] == "delete":
            if not recorded:
                self._delete_objects(project_id, entry["file_id"], key)
        elif not recorded and not entry.get("finished_ts"):  # a finished upload's file was deleted as files are
            if entry["kind"] == "tus":
                self.blobs.abort_append(key, entry["state"])
            self.blobs.delete(key)
        self.pending.delete_one({"_id": entry["_id"]})
