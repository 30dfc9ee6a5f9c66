"""The MongoDB adapter: one platform database plus one database per project.

The same code path serves a real MongoDB (production) and the embedded nx-27017 server (default).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

import orjson
import pymongo
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from baas.query import and_filters

PROJECT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
STORAGE_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
# Server error codes services turn into their own messages (the server's text is for the log only).
SORT_MEMORY_CODES = frozenset({292, 16819, 16820})  # QueryExceededMemoryLimitNoDiskUseAllowed and its elders
TOO_LARGE_CODES = frozenset({10334, 17419, 17420})   # BSONObjectTooLarge, document grew too large


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
        self._sql_backed: bool | None = None
        # project id -> the storage id of an imported project (baas.projects.transfer), or None for the database
        # named after the project. Set by ProjectService (a cached read of the project record).
        self.storage_of = None
        self._databases: dict = {}

    @property
    def sql_backed(self) -> bool:
        """Whether the server is the embedded nx-27017 (MongoDB's protocol over SQLite), asked once.

        Only the shape of queries depends on it (see `find_page`): both answer them alike.
        """
        if self._sql_backed is None:
            try:
                info = self.client.admin.command("buildInfo")
            except PyMongoError:
                return False  # asked again next time; a database that is down answers nothing anyway
            self._sql_backed = info.get("process") == "nx_27017"
        return self._sql_backed

    def derived_db_name(self, project_id: str) -> str:
        """The database of a project that was created here (not imported)."""
        if not PROJECT_ID_PATTERN.match(project_id):
            raise ValueError(f"not a project id: {project_id!r}")
        return f"{self.db_prefix}p_{project_id}"

    def storage_db_name(self, storage_id: str) -> str:
        """The database of an imported project ('s_', so no project id can name it)."""
        if not STORAGE_ID_PATTERN.match(storage_id):
            raise ValueError(f"not a storage id: {storage_id!r}")
        return f"{self.db_prefix}s_{storage_id}"

    def project_db_name(self, project_id: str) -> str:
        name = self.derived_db_name(project_id)
        storage = self.storage_of(project_id) if self.storage_of is not None else None
        return self.storage_db_name(storage) if storage else name

    def _database(self, name: str):
        db = self._databases.get(name)
        if db is None:
            db = self._databases[name] = self.client[name]
        return db

    def project_db(self, project_id: str):
        return self._database(self.project_db_name(project_id))

    def storage_db(self, storage_id: str):
        return self._database(self.storage_db_name(storage_id))

    def collection(self, project_id: str, name: str):
        return self.project_db(project_id)[name]

    def drop_project(self, project_id: str, storage_id: str | None = None) -> None:
        """Drop a project's database: the one it was created with, and the imported one it uses, if any."""
        self.client.drop_database(self.derived_db_name(project_id))
        if storage_id:
            self.client.drop_database(self.storage_db_name(storage_id))

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


def failure_reason(exc: PyMongoError) -> str:
    """The server's own message of a failed command, for the log."""
    details = getattr(exc, "details", None) or {}
    return str(details.get("errmsg") or exc)


def redact_uri(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", uri)


def ensure_index(collection, keys, *, name: str, **options) -> None:
    """Create an index with an explicit name (servers disagree on generated names).

    A unique index over duplicate values raises DuplicateKeyError, as MongoDB does (the embedded database
    raises a bare OperationFailure with SQLite's text).
    """
    try:
        collection.create_index(keys, name=name, **options)
    except OperationFailure as exc:
        if exc.code is None and "UNIQUE constraint failed" in failure_reason(exc):
            raise DuplicateKeyError(failure_reason(exc), 11000, exc.details) from None
        raise


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


def find_one_and_update(collection, filter: dict, update: dict):
    """The document after `update`, applied atomically to the one document matching `filter`; None if none."""
    return collection.find_one_and_update(filter, update, return_document=pymongo.ReturnDocument.AFTER)


def find_page(collection, filter: dict, projection: dict | None, sort: list, skip: int, limit: int,
              max_time_ms: int | None = None, *, after: list[dict] | None = None, sql_backed: bool = False,
              scalar_fields=frozenset(), index_keys=()) -> list:
    """`list(collection.find(filter, projection, sort=..., skip=..., limit=...))` as few `find` commands.

    `after` is a keyset cursor's ordered, disjoint branches (`baas.query.keyset_branches`): the page is the
    documents matching `filter` and any branch. MongoDB gets one command with their `$or`. The embedded
    database (`sql_backed`) evaluates any `$or` in Python over every document, so it gets one AND-only command
    per branch, in order, until the page is full, each shaped so SQLite can serve it from an index
    (`embedded_shape`). `scalar_fields` are the fields the collection's schema says never hold an array.
    """
    if after is not None and not after:
        return []
    if not sql_backed or (after is not None and skip):
        if after is not None:
            filter = and_filters(filter, after[0] if len(after) == 1 else {"$or": after})
        if sql_backed:
            filter = embedded_filter(collection.name, filter, scalar_fields, index_keys)
        return _find(collection, _find_command(collection.name, filter, projection, sort, skip, limit, max_time_ms))
    items: list = []
    for branch in after if after is not None else [None]:
        wanted = limit - len(items)
        command = embedded_find_command(collection.name, and_filters(filter, branch), projection, sort, skip,
                                        wanted, max_time_ms, scalar_fields, index_keys)
        items.extend(_find(collection, command))
        if len(items) >= limit:
            break
    return items


def _find_command(name: str, filter: dict, projection, sort: list, skip: int, limit: int, max_time_ms) -> dict:
    command = {"find": name, "filter": filter, "sort": dict(sort), "limit": limit, "batchSize": limit}
    if skip:
        command["skip"] = skip
    if projection is not None:
        command["projection"] = projection
    if max_time_ms:
        command["maxTimeMS"] = max_time_ms
    return command


def _find(collection, command: dict) -> list:
    """Run one `find` command and return all it matched.

    A page is small and bounded, so the first batch normally holds all of it; pymongo's cursor machinery
    costs more CPU than decoding the page itself. Should the server cut the batch short (its 16 MB batch
    limit), the cursor stays open: it is closed and the page is read the ordinary way.
    """
    reply = collection.database.command(command, codec_options=collection.codec_options,
                                        read_preference=collection.read_preference)
    cursor = reply["cursor"]
    if not cursor.get("id"):
        return cursor["firstBatch"]
    collection.database.command({"killCursors": collection.name, "cursors": [cursor["id"]]})
    found = collection.find(command["filter"], command.get("projection"), sort=list(command["sort"].items()),
                            skip=command.get("skip", 0), limit=command["limit"], max_time_ms=command.get("maxTimeMS"))
    for bound in ("min", "max"):
        if bound in command:
            found = getattr(found, bound)(list(command[bound].items()))
    return list(found)


# _id bounds as the embedded database's `min` (inclusive) and `max` (exclusive) options. Ids are strings
# without NUL (baas.query.DOCUMENT_ID), so the id followed by NUL is the next possible one.
_ID_BOUNDS = {"$gte": ("min", ""), "$gt": ("min", "\x00"), "$lt": ("max", ""), "$lte": ("max", "\x00")}


def embedded_find_command(name: str, filter: dict, projection, sort: list, skip: int, limit: int,
                          max_time_ms=None, scalar_fields=frozenset(), index_keys=()) -> dict:
    """The `find` command that asks the embedded database for exactly what `filter` asks MongoDB, in the
    shape its SQL compiler serves from an index (its source and `EXPLAIN QUERY PLAN` say which):

    - Plain equality on a field compiles to `value = ? OR EXISTS (... json_each ...)` (array membership),
      which no index serves; `{"$eq": value}` compiles to `value = ?`. Both mean the same on a field that
      never holds an array, so that form is sent for `scalar_fields`. Elsewhere equality keeps its meaning
      (`embedded_filter`).
    - A range on `_id` is evaluated in Python over every document; the server's `min`/`max` options bound
      the `_id` column (and its unique index) in SQL instead.
    """
    shaped = embedded_filter(name, filter, scalar_fields, index_keys)
    bounds = {}
    id_range = shaped.get("_id")
    if isinstance(id_range, dict) and id_range and all(op in _ID_BOUNDS and isinstance(v, str)
                                                        for op, v in id_range.items()) \
            and len({_ID_BOUNDS[op][0] for op in id_range}) == len(id_range) and not _holds_dates(shaped):
        # (Filters holding dates take another path in the server, which does not apply min/max.)
        del shaped["_id"]
        for op, value in id_range.items():
            bound, suffix = _ID_BOUNDS[op]
            bounds[bound] = {"_id": value + suffix}
    command = _find_command(name, shaped, projection, sort, skip, limit, max_time_ms)
    command.update(bounds)
    return command


_MEMBERSHIP_SAFE = (str, int, float, bool)


def embedded_filter(name: str, filter: dict, scalar_fields=frozenset(), index_keys=()) -> dict:
    """`filter` as the embedded database must get it to answer what MongoDB answers.

    On a field that may hold an array, equality also means array membership. The embedded database tests
    membership for plain equality, except on a field that the name of one of its indexes ends with (its
    internal names join the collection and the indexed fields with '_'), and never for `$eq`: there it
    would miss every array. `{"$in": [value]}` means the same on MongoDB and is tested on every element
    there, so it is sent for those. Equality on `scalar_fields` becomes `$eq`, which an index serves.
    """
    suffixes = tuple("_" + "_".join(field.replace(".", "_") for field in keys) for keys in index_keys)
    index_names = tuple(f"idx_{name}{suffix}" for suffix in suffixes)
    return _embedded_shape(filter, scalar_fields, index_names)


def _embedded_shape(filter: dict, scalar_fields, index_names) -> dict:
    shaped = {}
    for key, value in filter.items():
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            shaped[key] = [_embedded_shape(item, scalar_fields, index_names) if isinstance(item, dict) else item
                           for item in value]
        elif key.startswith("$") or key == "_id":
            shaped[key] = value
        elif key in scalar_fields:
            shaped[key] = {"$eq": value} if isinstance(value, (str, int, float)) else value
        elif isinstance(value, _MEMBERSHIP_SAFE):
            suffix = "_" + key.replace(".", "_")
            shaped[key] = {"$in": [value]} if any(n.endswith(suffix) for n in index_names) else value
        elif isinstance(value, dict) and len(value) == 1 and isinstance(value.get("$eq"), _MEMBERSHIP_SAFE):
            shaped[key] = {"$in": [value["$eq"]]}
        else:
            shaped[key] = value
    return shaped


def _holds_dates(value) -> bool:
    if isinstance(value, datetime):
        return True
    if isinstance(value, dict):
        return any(_holds_dates(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_dates(item) for item in value)
    return False


MAX_TEXT_CHECKS = 10


class AmbiguousGroups(Exception):
    """Aggregate values of `field` that the server returned as text cannot be restored for certain."""

    def __init__(self, field: str, reason: str):
        super().__init__(field)
        self.field = field
        self.reason = reason


def _from_extended_json(value):
    if isinstance(value, list):
        return [_from_extended_json(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"$date"}:
            when = value["$date"]
            if isinstance(when, int):
                return datetime.fromtimestamp(when / 1000, timezone.utc)
            if isinstance(when, str):
                parsed = datetime.fromisoformat(when.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        return {key: _from_extended_json(item) for key, item in value.items()}
    return value


def _json_text(value):
    """The array, object or {"$date": ...} a text may stand for, else None."""
    if not isinstance(value, str) or value[:1] not in ("[", "{"):
        return None
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, (list, dict)) else None


def restore_aggregated(collection, match: dict, field: str, values: list, *, holds_dates: bool,
                       strings_possible: bool) -> dict:
    """{text: stored value} for aggregate results (group keys, $min/$max) of `field` that came back as text.

    The embedded database returns dates, arrays and objects out of `$group` as their (extended) JSON text;
    MongoDB returns them as stored, so there a text result is always a stored string and stays one. What
    the caller knows decides without a query: `{"$date": ...}` is a date only in a field that `holds_dates`
    (no other field can hold one), and an array or object text is one when the field cannot hold strings.
    Otherwise a query asks whether a matching document holds that very string (at most MAX_TEXT_CHECKS per
    call: the embedded database answers type questions by scanning the collection). Raises AmbiguousGroups
    when the server merged such a string with an array or object of the same JSON form, or when there are
    more texts than it may check.
    """
    restored, checks = {}, 0
    for text in {value for value in values if isinstance(value, str)}:
        parsed = _json_text(text)
        if parsed is None:
            continue
        if isinstance(parsed, dict) and set(parsed) == {"$date"}:
            if holds_dates:
                restored[text] = _from_extended_json(parsed)
            continue
        if not strings_possible:
            restored[text] = _from_extended_json(parsed)
            continue
        checks += 1
        if checks > MAX_TEXT_CHECKS:
            raise AmbiguousGroups(field, f"more than {MAX_TEXT_CHECKS} distinct arrays or objects")
        strings = {"$and": [part for part in (match, {field: text}, {field: {"$type": "string"}}) if part]}
        if collection.find_one(strings, {"_id": 1}) is None:
            restored[text] = _from_extended_json(parsed)
            continue
        others = {"$and": [part for part in (match, {field: {"$eq": parsed}}, {"$nor": [{field: {"$type": "string"}}]})
                           if part]}
        if collection.find_one(others, {"_id": 1}) is not None:
            raise AmbiguousGroups(field, "both text and arrays or objects whose JSON form is that same text")
    return restored
