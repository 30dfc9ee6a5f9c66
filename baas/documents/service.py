"""Documents and collection definitions: every rule of the data API lives here.

Views pass the principal and plain values; this service checks scopes, compiles the collection's access rule
for the caller into the MongoDB filter of the operation, validates and converts documents, calls the
plugin hooks, and writes conditionally on the revision it read so concurrent writers never overwrite each
other silently.
"""
from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

import orjson
from bson import ObjectId
from pymongo.errors import DuplicateKeyError, ExecutionTimeout, OperationFailure, PyMongoError

from baas import rules as rules_module
from baas.documents.definitions import (DEFINITIONS, OWNER_INDEX, SYSTEM_FIELDS, Definition, check_indexes,
                                        check_schema, storage_name)
from baas.documents.updates import apply_patch, filter_fields, parse_patch, plan_atomic, shape_of
from baas.errors import BaasError, Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from baas.query import (DEFAULT_LIMIT, DOCUMENT_ID, MAX_LIMIT, MAX_OFFSET, MAX_REGEX, CursorCodec, and_filters,
                        check_collection_name, check_document_id, check_document_keys, check_path, compile_filter,
                        equality_as_in, keyset_branches, parse_bool, parse_fields, parse_int, parse_json_param,
                        parse_sort, path_value)
from baas.storage.mongo import (SORT_MEMORY_CODES, TOO_LARGE_CODES, AmbiguousGroups, ensure_index, failure_reason,
                                embedded_filter, find_one, find_one_and_update, find_page,
                                restore_aggregated)
from baas.util import TTLCache, new_revision, utcnow

log = logging.getLogger("baas.documents")

MAX_BATCH = 100
MAX_EXPAND_PATHS = 5
MAX_EXPAND_DEPTH = 3
MAX_METRICS = 10
MAX_GROUPS = 1000
METRIC_KINDS = ("count", "sum", "avg", "min", "max")
WRITE_RETRIES = 5
BATCH_OPS = ("create", "replace", "update", "delete")


@dataclass(slots=True)
class FindParams:
    """The raw query-string values of a list request."""
    filter: str | None = None
    sort: str | None = None
    limit: str | None = None
    offset: str | None = None
    fields: str | None = None
    cursor: str | None = None
    count: str | None = None
    expand: str | None = None


def etag_matches(if_match: str | None, rev: str) -> bool:
    """If-Match / If-None-Match semantics: a list of tags, weak tags and '*' all count."""
    if if_match is None:
        return True
    for candidate in if_match.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate.strip('"') == rev:
            return True
    return False


def query_refused(exc: OperationFailure, parameter: str) -> Invalid:
    """A 400 for a query the database stopped: over the time limit, or refused outright.

    The database's own text stays in the server log: it names tables and internals (and, on the embedded
    database, SQL) that mean nothing to a client and tell an attacker what runs underneath.
    """
    if isinstance(exc, ExecutionTimeout):
        return Invalid("The query ran longer than the server allows; make the filter more selective (indexed "
                       "fields, anchored regexes) or leave out count=true.",
                       errors={parameter: ["Query time limit exceeded."]})
    log.warning("database refused a query (%s): code %s: %s", parameter, exc.code, failure_reason(exc))
    if exc.code in SORT_MEMORY_CODES:
        return Invalid("The result is too large to sort without an index; add an index on the sort fields or "
                       "make the filter more selective.", errors={parameter: ["Sort needs an index."]})
    return Invalid("The database could not run this query; simplify the filter.",
                   errors={parameter: ["Refused by the database."]})


def write_refused(exc: OperationFailure) -> Invalid:
    """A 400 for a write the database refused for a reason other than a unique index."""
    log.warning("database refused a write: code %s: %s", exc.code, failure_reason(exc))
    if exc.code in TOO_LARGE_CODES:
        return Invalid("The document is larger than the database accepts (16 MB).",
                       errors={"document": ["Too large."]})
    return Invalid("The database refused to store this document.", errors={"document": ["Refused by the database."]})


def _ensure_owner_index(collection) -> None:
    # "owner" rules filter every read and write on _owner.
    ensure_index(collection, [("_owner", 1)], name=OWNER_INDEX)




class DocumentService:
    def __init__(self, mongo, projects, hooks, secret: str, cache_seconds: float = 2,
                 query_time_limit_ms: int = 10_000, max_regex_length: int = MAX_REGEX):
        self.mongo = mongo
        self.max_regex_length = max_regex_length
        # Client filters may hold costly regexes or match huge sets: the database stops them at this limit.
        self.query_time_limit_ms = query_time_limit_ms
        self.projects = projects
        self.hooks = hooks
        self.cursors = CursorCodec(secret)
        self._definitions = TTLCache(cache_seconds)

    def _client_filter(self, defn: Definition, text: str | None) -> dict:
        if not text:
            return {}
        return compile_filter(parse_json_param(text, "filter"), defn.query_date_fields,
                              max_regex=self.max_regex_length)

    # --- definitions -----------------------------------------------------------------------------------------

    def _db(self, project_id: str):
        # Not cached here: an import may switch the project to another database (MongoStore caches handles).
        return self.mongo.project_db(project_id)

    def _admin_project(self, principal, project_id: str | None):
        """The project whose definitions a server key (its own) or the platform admin (any) may manage."""
        principal.require_server()
        principal.require_scope("collections:admin")
        return self._project(principal, project_id)

    def _project(self, principal, project_id: str | None = None):
        if project_id is None or (principal.project is not None and principal.project.id == project_id):
            if principal.project is None:
                raise NotFound("No project.")
            return principal.project
        if principal.admin:
            return self.projects.info(project_id)
        raise NotFound(f"No project '{project_id}'.")

    def definition(self, project, name: str) -> Definition:
        """The collection's definition (cached briefly); undefined collections get the project's defaults."""
        key = (project.id, name)
        found = self._definitions.get(key)
        if found is None:
            check_collection_name(name)
            db = self._db(project.id)
            stored = db[DEFINITIONS].find_one({"_id": name})
            collection = db[storage_name(name)]
            if stored is not None:
                found = Definition.from_stored(project.id, collection, stored)
            else:
                found = Definition(project.id, name, collection, rules=rules_module.default_rules(project.settings))
            self._definitions.set(key, found)
        if not found.defined and project.settings.get("strict_collections"):
            raise NotFound(f"No collection '{name}': this project accepts documents only in collections an admin "
                           f"defined.")
        return found

    def _forget(self, project_id: str, name: str) -> None:
        # Other processes see the change when their cache entry expires (keys.cache_seconds).
        self._definitions.discard((project_id, name))

    def _materialize(self, project, defn: Definition):
        """Store the definition of a collection written for the first time, freezing its default rules.

        Returns (the stored definition, a filter matching exactly what this call stored, or None when the
        definition was already there), so a first write that fails can take its definition back.
        """
        now = utcnow()
        db = self._db(project.id)
        stored = {"schema_json": None, "indexes": [], "rules_json": orjson.dumps(defn.rules).decode(),
                  "created_at": now, "updated_at": now}
        result = db[DEFINITIONS].update_one({"_id": defn.name}, {"$setOnInsert": stored}, upsert=True)
        created = {"_id": defn.name, "created_at": now, "updated_at": now} if result.upserted_id else None
        try:
            _ensure_owner_index(defn.collection)
        except BaseException:
            self._unmaterialize(project, defn.collection, created)
            raise
        self._forget(project.id, defn.name)
        return self.definition(project, defn.name), created

    def _unmaterialize(self, project, collection, created: dict | None) -> None:
        """Take back a definition `_materialize` stored, unless an admin changed it or a document arrived."""
        if created is None:
            return
        try:
            if collection.find_one({}, {"_id": 1}) is None:
                self._db(project.id)[DEFINITIONS].delete_one(created)
        except PyMongoError:
            log.warning("could not take back the definition of %s/%s", project.id, created["_id"])
        self._forget(project.id, created["_id"])

    def list_collections(self, principal, project_id: str | None = None) -> list[dict]:
        project = self._admin_project(principal, project_id)
        db = self._db(project.id)
        return [Definition.from_stored(project.id, db[storage_name(d["_id"])], d).describe()
                for d in db[DEFINITIONS].find({}).sort("_id", 1)]

    def get_collection(self, principal, name: str, project_id: str | None = None) -> dict:
        project = self._admin_project(principal, project_id)
        check_collection_name(name)
        stored = self._db(project.id)[DEFINITIONS].find_one({"_id": name})
        if stored is None:
            raise NotFound(f"No collection '{name}'.")
        return Definition.from_stored(project.id, None, stored).describe()

    def put_collection(self, principal, name: str, body: dict, project_id: str | None = None) -> tuple[dict, bool]:
        """Create or change a definition; keys the body omits keep their value. Returns (definition, created)."""
        project = self._admin_project(principal, project_id)
        check_collection_name(name)
        if not isinstance(body, dict):
            raise Invalid("Send a JSON object with schema, indexes and rules.")
        unknown = set(body) - {"schema", "indexes", "rules"}
        if unknown:
            raise Invalid(f"Unknown keys: {', '.join(sorted(unknown))}; a definition has schema, indexes, rules.",
                          errors={k: ["Unknown field."] for k in unknown})
        db = self._db(project.id)
        collection = db[storage_name(name)]
        stored = db[DEFINITIONS].find_one({"_id": name})
        current = Definition.from_stored(project.id, collection, stored) if stored else None
        schema = check_schema(body["schema"]) if "schema" in body else (current.schema if current else None)
        indexes = check_indexes(body["indexes"]) if "indexes" in body else (current.indexes if current else [])
        base = current.rules if current else rules_module.default_rules(project.settings)
        rules = rules_module.check_rules(body.get("rules"), base) if "rules" in body else dict(base)
        now = utcnow()
        defn = Definition(project.id, name, collection, schema=schema, indexes=indexes, rules=rules,
                          created_at=current.created_at if current else now, updated_at=now, defined=True)
        self._apply_indexes(collection, current.indexes if current else [], indexes)
        if current is None:
            _ensure_owner_index(collection)
        db[DEFINITIONS].replace_one({"_id": name}, defn.to_stored(), upsert=True)
        self._forget(project.id, name)
        return defn.describe(), current is None

    @staticmethod
    def _apply_indexes(collection, old: list, new: list) -> None:
        old_by_name = {i["name"]: i for i in old}
        new_names = {i["name"] for i in new}
        created = []
        try:
            for index in new:
                previous = old_by_name.get(index["name"])
                if previous == index:
                    continue
                if previous is not None:
                    collection.drop_index(index["name"])
                options = {"unique": True} if index["unique"] else {}
                if index["expire_after_seconds"] is not None:
                    options["expireAfterSeconds"] = index["expire_after_seconds"]
                ensure_index(collection, list(index["keys"].items()), name=index["name"], **options)
                created.append(index["name"])
        except (DuplicateKeyError, OperationFailure) as exc:
            for name in created:
                try:
                    collection.drop_index(name)
                except PyMongoError:
                    log.warning("could not roll back index %s", name)
            log.warning("index %s not created: code %s: %s", index["name"], exc.code, failure_reason(exc))
            if isinstance(exc, DuplicateKeyError) or exc.code == 11000:
                reason = "documents already in the collection have the same values in its fields"
            else:
                reason = "the database refused it"
            raise Conflict(f"Index '{index['name']}' cannot be created: {reason}.",
                           errors={"indexes": [index["name"]]}) from None
        for name in old_by_name.keys() - new_names:
            try:
                collection.drop_index(name)
            except OperationFailure:
                log.warning("index %s was already gone", name)

    def delete_collection(self, principal, name: str, project_id: str | None = None) -> None:
        """Drop a collection's documents and its definition."""
        project = self._admin_project(principal, project_id)
        check_collection_name(name)
        db = self._db(project.id)
        existed = db[DEFINITIONS].delete_one({"_id": name}).deleted_count
        if not existed and storage_name(name) not in db.list_collection_names():
            raise NotFound(f"No collection '{name}'.")
        db.drop_collection(storage_name(name))
        self._forget(project.id, name)

    # --- single documents ------------------------------------------------------------------------------------

    @staticmethod
    def _allowed(defn: Definition, principal, action: str):
        access = defn.access(principal, action)
        if not access.allowed:
            raise Forbidden(access.reason)
        return access

    def _for_backend(self, defn: Definition, query: dict) -> dict:
        """`query` in the shape that makes the embedded database answer what MongoDB answers."""
        if not self.mongo.sql_backed:
            return query
        return embedded_filter(defn.collection.name, query, defn.scalar_fields, defn.index_keys)

    def _read_access(self, defn: Definition, principal, action: str) -> dict | None:
        """The filter for reading under `action` (list, aggregate, read): that action's rule AND read's rule."""
        access = self._allowed(defn, principal, action)
        filters = [access.filter]
        if action != "read":
            filters.append(self._allowed(defn, principal, "read").filter)
        filters.append(defn.expiry_filter())
        return and_filters(*filters)

    def _user_data(self, body, principal, *, allow_id: bool) -> tuple[dict, str | None, object]:
        """Split a client body into (data, requested id, requested owner) after checking its keys."""
        if not isinstance(body, dict):
            raise Invalid("The document must be a JSON object.")
        doc_id = owner = _UNSET
        data = {}
        # Whether check_document_keys could find anything: it is skipped only for what it provably passes (valid
        # keys, values that are scalars or lists of scalars, so one level deep), and otherwise runs over all of
        # `data` as before, so which key an error names stays the same.
        check = False
        for key, value in body.items():
            if key == "_id" and allow_id:
                doc_id = check_document_id(value)
            elif key == "_owner" and principal.is_server:
                if value is not None and not isinstance(value, str):
                    raise Invalid("'_owner' is a user id or null.", errors={"_owner": ["Not a user id."]})
                owner = value
            elif key.startswith("_"):
                raise Invalid(f"'{key}': fields starting with '_' are set by the server.",
                              errors={key: ["Reserved field."]})
            else:
                data[key] = value
                if check:
                    continue
                if not key or key[0] == "$" or "." in key or "\x00" in key:
                    check = True
                elif type(value) not in _SCALARS:
                    if type(value) is list:
                        for item in value:
                            if type(item) not in _SCALARS:
                                check = True
                                break
                    else:
                        check = True
        if check:
            check_document_keys(data)
        return data, doc_id, owner

    def create(self, principal, collection: str, body) -> dict:
        principal.require_scope("documents:write")
        project = principal.project
        defn = self.definition(project, collection)
        access = self._allowed(defn, principal, "create")
        data, doc_id, owner = self._user_data(body, principal, allow_id=True)
        if defn.defined:
            return self._insert(principal, defn, access, data, doc_id, owner)
        # The stored definition decides: an admin may have defined the collection since it was looked up.
        defn, created = self._materialize(project, defn)
        try:
            return self._insert(principal, defn, self._allowed(defn, principal, "create"), data, doc_id, owner)
        except BaseException:
            # A first write that fails leaves no collection definition behind.
            self._unmaterialize(project, defn.collection, created)
            raise

    def _insert(self, principal, defn: Definition, access, data: dict, doc_id, owner) -> dict:
        collection = defn.name
        data = defn.validate(data)
        now = utcnow()
        doc = {"_id": str(ObjectId()) if doc_id is _UNSET else doc_id, "_created": now, "_updated": now,
               "_owner": principal.user_id if owner is _UNSET else owner, "_rev": new_revision(), **data}
        if access.filter and not rules_module.matches(access.filter, doc):
            raise Forbidden("The new document does not satisfy this collection's 'create' rule.")
        doc = self._before_write(defn, principal, "create", doc, None, access.filter)
        doc["_shape"] = shape_of(doc)
        try:
            defn.collection.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("A document with this _id, or with the same values in a unique index, already exists.") \
                from None
        except OperationFailure as exc:
            raise write_refused(exc) from None
        self.hooks.after("baas_after_document_write", principal=principal, collection=collection,
                         action="create", document=doc, previous=None)
        return self._after_read(defn, principal, [defn.output(doc)])[0]

    def get(self, principal, collection: str, doc_id: str) -> dict:
        principal.require_scope("documents:read")
        defn = self.definition(principal.project, collection)
        access = self._allowed(defn, principal, "read")
        if not DOCUMENT_ID.match(doc_id):
            raise NotFound(f"No document '{doc_id}' in '{collection}'.")
        query = {"_id": doc_id}
        plugin_filter = self._plugin_filter(defn, principal, "read")
        if access.filter or defn.ttl or plugin_filter:
            query = self._for_backend(defn, and_filters(query, access.filter, defn.expiry_filter(), plugin_filter))
        # else: the id alone, as is, on every backend (the embedded shape leaves `_id` unchanged): the floor's find
        doc = find_one(defn.collection, query)
        if doc is None:
            raise NotFound(f"No document '{doc_id}' in '{collection}'.")
        doc = defn.output(doc)
        self._after_read(defn, principal, [doc])
        return doc

    def _load_for_write(self, defn: Definition, principal, action: str, doc_id: str):
        access = self._allowed(defn, principal, action)
        if not isinstance(doc_id, str) or not DOCUMENT_ID.match(doc_id):
            raise NotFound(f"No document '{doc_id}' in '{defn.name}'.")
        expiry = defn.expiry_filter()
        previous = find_one(defn.collection,
                            self._for_backend(defn, and_filters({"_id": doc_id}, access.filter, expiry)))
        if previous is None:
            if access.filter:
                read = defn.access(principal, "read")
                readable = self._for_backend(defn, and_filters({"_id": doc_id}, read.filter, expiry))
                if read.allowed and defn.collection.find_one(readable, {"_id": 1}) is not None:
                    raise Forbidden(f"You may read this document but not {action} it.")
            raise NotFound(f"No document '{doc_id}' in '{defn.name}'.")
        return access, previous

    def replace(self, principal, collection: str, doc_id: str, body, if_match: str | None = None) -> dict:
        principal.require_scope("documents:write")
        defn = self.definition(principal.project, collection)
        self._allowed(defn, principal, "update")
        data, given_id, owner = self._user_data(body, principal, allow_id=True)
        if given_id is not _UNSET and given_id != doc_id:
            raise Invalid("'_id' in the body differs from the id in the URL.", errors={"_id": ["Mismatch."]})
        data = defn.validate(data)
        return self._write(defn, principal, doc_id, if_match, "replace", lambda previous: (data, owner))

    def update(self, principal, collection: str, doc_id: str, body, if_match: str | None = None) -> dict:
        principal.require_scope("documents:write")
        defn = self.definition(principal.project, collection)
        self._allowed(defn, principal, "update")
        operations = parse_patch(body)

        def change(previous):
            data = {k: v for k, v in previous.items() if k not in SYSTEM_FIELDS}
            data = defn.json_form(copy.deepcopy(data))
            return defn.validate(apply_patch(data, operations)), _UNSET

        def atomic(access, previous):
            # With If-Match the client asked for a read-modify-write of the revision it holds.
            if if_match is not None:
                return None
            fixed = defn.date_fields | defn.guarded_fields | filter_fields(access.filter)
            return plan_atomic(operations, previous, schema=defn.schema, fixed_fields=fixed)

        return self._write(defn, principal, doc_id, if_match, "update", change, atomic)

    def _write(self, defn: Definition, principal, doc_id: str, if_match, action: str, change, atomic=None) -> dict:
        """Write the changed document; `atomic(access, previous)` may offer an atomic plan for it."""
        for _ in range(WRITE_RETRIES):
            access, previous = self._load_for_write(defn, principal, "update", doc_id)
            if not etag_matches(if_match, previous.get("_rev")):
                raise PreconditionFailed("The document changed since you read it (If-Match does not match its "
                                         "ETag); read it again and retry.")
            data, owner = change(previous)
            doc = {"_id": previous["_id"], "_created": previous.get("_created"), "_updated": utcnow(),
                   "_owner": previous.get("_owner") if owner is _UNSET else owner, "_rev": new_revision(), **data}
            if access.filter and not rules_module.matches(access.filter, doc):
                raise Forbidden("The changed document would no longer satisfy this collection's 'update' rule.")
            plan = atomic(access, previous) if atomic else None
            checked = copy.deepcopy(doc) if plan and self.hooks.has("baas_before_document_write",
                                                                      principal.project_id) else None
            doc = self._before_write(defn, principal, action, doc, previous, access.filter)
            unchanged_by_plugins = checked is None or rules_module.same_value(checked, doc)
            doc["_shape"] = shape_of(doc)
            if plan and unchanged_by_plugins:
                stored, retry_atomic = self._update_atomically(defn, access, previous, doc, plan)
                if not retry_atomic:
                    atomic = None
            else:
                stored = self._replace(defn, previous, doc)
            if stored is not None:
                self.hooks.after("baas_after_document_write", principal=principal, collection=defn.name,
                                 action=action, document=stored, previous=previous)
                return self._after_read(defn, principal, [defn.output(stored)])[0]
            if if_match is not None:
                raise PreconditionFailed("The document changed since you read it; read it again and retry.")
        raise Conflict("The document kept changing while it was being updated; retry.")

    @staticmethod
    def _replace(defn: Definition, previous: dict, doc: dict) -> dict | None:
        """Replace `previous` with `doc` if it is still at the revision read; None if it is not."""
        try:
            result = defn.collection.replace_one({"_id": previous["_id"], "_rev": previous.get("_rev")}, doc)
        except DuplicateKeyError:
            raise Conflict("Another document has the same values in a unique index.") from None
        except OperationFailure as exc:
            raise write_refused(exc) from None
        return doc if result.matched_count else None

    def _update_atomically(self, defn: Definition, access, previous: dict, doc: dict, plan) -> tuple[dict | None, bool]:
        """Apply the operators in the database, guarded; (stored document or None, worth trying again)."""
        guard, operators = plan
        system = {"_rev": doc["_rev"], "_shape": doc["_shape"]}
        operators = {**operators, "$set": {**operators.get("$set", {}), **system},
                     # $currentDate: a datetime sent with $set is stored as text on the embedded database.
                     "$currentDate": {"_updated": True}}
        query = and_filters({"_id": previous["_id"]}, access.filter, defn.expiry_filter(), guard)
        try:
            return find_one_and_update(defn.collection, self._for_backend(defn, query), operators), True
        except DuplicateKeyError:
            raise Conflict("Another document has the same values in a unique index.") from None
        except OperationFailure as exc:
            # A concurrent writer gave a field a type the operator refuses: read again, write the safe way.
            log.info("atomic update of %s/%s refused (%s); retrying as a replace", defn.name, previous["_id"],
                     failure_reason(exc))
            return None, False

    def delete(self, principal, collection: str, doc_id: str, if_match: str | None = None) -> None:
        principal.require_scope("documents:write")
        defn = self.definition(principal.project, collection)
        for _ in range(WRITE_RETRIES):
            _, previous = self._load_for_write(defn, principal, "delete", doc_id)
            if not etag_matches(if_match, previous.get("_rev")):
                raise PreconditionFailed("The document changed since you read it (If-Match does not match its "
                                         "ETag).")
            self.hooks.before("baas_before_document_write", principal=principal, collection=collection,
                              action="delete", document=None, previous=previous)
            try:
                deleted = defn.collection.delete_one({"_id": previous["_id"], "_rev": previous.get("_rev")})
            except OperationFailure as exc:
                raise write_refused(exc) from None
            if deleted.deleted_count:
                self.hooks.after("baas_after_document_write", principal=principal, collection=collection,
                                 action="delete", document=None, previous=previous)
                return
            if if_match is not None:
                raise PreconditionFailed("The document changed since you read it.")
        raise Conflict("The document kept changing while it was being deleted; retry.")

    # --- plugin hooks (baas/plugins/hookspecs.py) --------------------------------------------------------------

    def _before_write(self, defn: Definition, principal, action: str, doc: dict, previous, rule_filter) -> dict:
        """Run the before-write hook; what a plugin changed is checked again as strictly as a client's body."""
        if not self.hooks.has("baas_before_document_write", principal.project_id):
            return doc
        system = {k: doc.get(k) for k in SYSTEM_FIELDS if k in doc}
        self.hooks.before("baas_before_document_write", principal=principal, collection=defn.name,
                          action=action, document=doc, previous=previous)
        if not isinstance(doc, dict):
            raise Invalid("A plugin turned the document into something that is not an object.")
        for key in doc:
            if key.startswith("_") and (key not in system or doc[key] != system[key]):
                raise Invalid(f"A plugin set the reserved field '{key}'; fields starting with '_' are the "
                              f"server's.", errors={key: ["Reserved field."]})
        data = {k: v for k, v in doc.items() if k not in system}
        check_document_keys(data)
        data = defn.validate(defn.json_form(copy.deepcopy(data)))
        checked = {**system, **data}
        if rule_filter and not rules_module.matches(rule_filter, checked):
            raise Forbidden(f"After a plugin's change the document would not satisfy this collection's "
                            f"'{'create' if action == 'create' else 'update'}' rule.")
        return checked

    def _plugin_filter(self, defn: Definition, principal, action: str) -> dict | None:
        """Constraints plugins add to a read; ANDed with the rules, so they can only narrow it."""
        if not self.hooks.has("baas_before_document_query", principal.project_id):
            return None
        extra = self.hooks.before("baas_before_document_query", principal=principal, collection=defn.name,
                                  action=action)
        compiled = [compile_filter(f, defn.query_date_fields) for f in extra if f]
        return and_filters(*compiled) if compiled else None

    def _after_read(self, defn: Definition, principal, docs: list) -> list:
        """Let plugins redact what a response shows (reads, and the documents writes answer with)."""
        if docs and self.hooks.has("baas_after_document_read", principal.project_id):
            # Redaction must happen, so a failing read hook fails the read (like a before-hook).
            self.hooks.before("baas_after_document_read", principal=principal, collection=defn.name,
                              documents=docs)
        return docs

    # --- queries ---------------------------------------------------------------------------------------------

    def find(self, principal, collection: str, params: FindParams) -> dict:
        principal.require_scope("documents:read")
        project = principal.project
        defn = self.definition(project, collection)
        rule_filter = self._read_access(defn, principal, "list")
        query = self._client_filter(defn, params.filter)
        sort = parse_sort(params.sort)
        limit = parse_int(params.limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = parse_int(params.offset, "offset", 0, 0, MAX_OFFSET)
        fields = parse_fields(params.fields)
        expand = self._parse_expand(project, defn, params.expand) if params.expand else None
        base = and_filters(query, rule_filter, self._plugin_filter(defn, principal, "list"))
        after = None
        # A cursor belongs to one collection, sort and filter; replaying it elsewhere is refused.
        scope = f"{project.id}/{collection}/{hashlib.sha256((params.filter or '').encode()).hexdigest()[:16]}"
        if params.cursor:
            after = keyset_branches(sort, self.cursors.decode(params.cursor, scope, sort))
        projection = None
        hidden = ()
        if fields is not None:
            wanted = set(fields) | {"_id"}
            extra = {field.split(".")[0] for field, _ in sort} - wanted
            if expand:
                # A reference the response leaves out is not worth fetching.
                expand = {field: children for field, children in expand.items() if field in wanted}
            hidden = tuple(extra)
            projection = dict.fromkeys(wanted | extra, 1)
        try:
            items = find_page(defn.collection, base, projection, sort, offset, limit + 1,
                              max_time_ms=self.query_time_limit_ms, after=after,
                              sql_backed=self.mongo.sql_backed, scalar_fields=defn.scalar_fields,
                              index_keys=defn.index_keys)
        except OperationFailure as exc:
            raise query_refused(exc, "filter") from None
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            next_cursor = self.cursors.encode(scope, sort, [path_value(last, field) for field, _ in sort])
        if expand:
            self._expand(principal, project, defn, items, expand)
        for item in items:
            defn.output(item)
        if hidden:
            for item in items:
                for field in hidden:
                    item.pop(field, None)
        self._after_read(defn, principal, items)
        result = {"items": items, "next_cursor": next_cursor}
        if parse_bool(params.count, "count"):
            # Counting scans every match, which is why totals are opt-in.
            try:
                result["total"] = defn.collection.count_documents(self._for_backend(defn, base),
                                                                  maxTimeMS=self.query_time_limit_ms)
            except OperationFailure as exc:
                raise query_refused(exc, "count") from None
        return result

    def _parse_expand(self, project, defn: Definition, text: str) -> dict:
        """'author,comments.author' -> {'author': {}, 'comments': {'author': {}}}, checked against schemas."""
        paths = [p.strip() for p in text.split(",") if p.strip()]
        if len(paths) > MAX_EXPAND_PATHS:
            raise Invalid(f"Expand at most {MAX_EXPAND_PATHS} paths.", errors={"expand": ["Too many paths."]})
        tree: dict = {}
        for path in paths:
            check_path(path, "expand")
            parts = path.split(".")
            if len(parts) > MAX_EXPAND_DEPTH:
                raise Invalid(f"Expand paths go at most {MAX_EXPAND_DEPTH} levels deep.",
                              errors={"expand": [f"Too deep: {path}"]})
            node, current = tree, defn
            for part in parts:
                if current is None or part not in current.refs:
                    raise Invalid(f"Cannot expand '{path}': '{part}' is not declared as a reference (x-ref) in the "
                                  f"schema.", errors={"expand": [f"Not a reference: {path}"]})
                target = current.refs[part][0]
                try:
                    current = self.definition(project, target)
                except NotFound:
                    current = None
                node = node.setdefault(part, {})
        return tree

    def _expand(self, principal, project, defn: Definition, docs: list, tree: dict) -> None:
        for field, children in tree.items():
            if field not in defn.refs:
                continue  # the schema changed since the expand paths were checked: leave the ids as they are
            target_name, _ = defn.refs[field]
            try:
                target = self.definition(project, target_name)
            except NotFound:
                continue
            access = target.access(principal, "read")
            if not access.allowed:
                continue  # ids stay ids: the caller may not read the referenced documents
            ids = set()
            for doc in docs:
                value = doc.get(field)
                if isinstance(value, str):
                    ids.add(value)
                elif isinstance(value, list):
                    ids.update(v for v in value if isinstance(v, str))
            if not ids:
                continue
            query = and_filters({"_id": {"$in": sorted(ids)}}, access.filter, target.expiry_filter())
            try:
                fetched = {d["_id"]: d for d in target.collection.find(self._for_backend(target, query),
                                                                       max_time_ms=self.query_time_limit_ms)}
            except OperationFailure as exc:
                raise query_refused(exc, "expand") from None
            if children and fetched:
                self._expand(principal, project, target, list(fetched.values()), children)
            for d in fetched.values():
                target.output(d)
            for doc in docs:
                value = doc.get(field)
                if isinstance(value, str):
                    doc[field] = fetched.get(value, value)
                elif isinstance(value, list):
                    doc[field] = [fetched.get(v, v) if isinstance(v, str) else v for v in value]

    def aggregate(self, principal, collection: str, group_by: str | None, metrics: str | None,
                  filter_text: str | None) -> dict:
        principal.require_scope("documents:read")
        defn = self.definition(principal.project, collection)
        rule_filter = self._read_access(defn, principal, "aggregate")
        query = self._client_filter(defn, filter_text)
        if group_by:
            check_path(group_by, "group_by")
        labels = [m.strip() for m in (metrics or "count").split(",") if m.strip()]
        if not labels or len(labels) > MAX_METRICS:
            raise Invalid(f"Ask for 1 to {MAX_METRICS} metrics.", errors={"metrics": ["Wrong number of metrics."]})
        group: dict = {"_id": f"${group_by}" if group_by else None}
        for position, label in enumerate(labels):
            kind, _, field = label.partition(":")
            if kind not in METRIC_KINDS or (kind == "count") != (field == ""):
                raise Invalid(f"Unknown metric '{label}'; use count, sum:<field>, avg:<field>, min:<field>, "
                              f"max:<field>.", errors={"metrics": [f"Unknown metric: {label}"]})
            if kind == "count":
                group[f"m{position}"] = {"$sum": 1}
            else:
                check_path(field, "metrics")
                group[f"m{position}"] = {f"${kind}": f"${field}"}
        match = and_filters(query, rule_filter, self._plugin_filter(defn, principal, "aggregate"))
        pipeline = ([{"$match": equality_as_in(match)}] if match else []) + [
            {"$group": group}, {"$sort": {"_id": 1}}, {"$limit": MAX_GROUPS}]
        try:
            rows = list(defn.collection.aggregate(pipeline, maxTimeMS=self.query_time_limit_ms))
        except OperationFailure as exc:
            raise query_refused(exc, "filter") from None
        fields = {"_id": group_by} if group_by else {}
        for position, label in enumerate(labels):
            kind, _, field = label.partition(":")
            if kind in ("min", "max"):
                fields[f"m{position}"] = field
        try:
            for column, field in fields.items():
                restored = restore_aggregated(defn.collection, match, field, [row.get(column) for row in rows],
                                              holds_dates=field in defn.query_date_fields,
                                              strings_possible=defn.may_hold_strings(field))
                date_only = field in defn.date_only_fields
                for row in rows:
                    value = row.get(column)
                    if isinstance(value, str) and value in restored:
                        value = row[column] = restored[value]
                    if date_only and isinstance(value, datetime):
                        row[column] = value.date().isoformat()  # as documents show it
        except AmbiguousGroups as exc:
            raise Invalid(f"'{exc.field}' holds {exc.reason}, which the embedded database cannot group or compare "
                          f"apart. Filter some out, or declare the field's type in the collection's schema.",
                          errors={"group_by" if exc.field == group_by else "metrics": ["Ambiguous values."]}) \
                from None
        except OperationFailure as exc:
            raise query_refused(exc, "filter") from None
        groups = []
        for row in rows:
            entry = {"key": row.get("_id")}
            for position, label in enumerate(labels):
                entry[label] = row.get(f"m{position}")
            groups.append(entry)
        return {"groups": groups}

    # --- batch -----------------------------------------------------------------------------------------------

    def batch(self, principal, operations) -> list[dict]:
        """Run up to 100 writes in order; each succeeds or fails on its own (not atomic)."""
        principal.require_scope("documents:write")
        if not isinstance(operations, list) or not operations or len(operations) > MAX_BATCH:
            raise Invalid(f"'operations' is a list of 1 to {MAX_BATCH} operations.",
                          errors={"operations": ["Wrong number of operations."]})
        results = []
        for operation in operations:
            try:
                results.append(self._batch_one(principal, operation))
            except BaasError as exc:
                error = {"code": exc.status, "message": exc.message}
                if exc.errors:
                    error["errors"] = exc.errors
                results.append({"status": exc.status, "error": error})
        return results

    def _batch_one(self, principal, operation) -> dict:
        if not isinstance(operation, dict):
            raise Invalid("Each operation is an object with op, collection and id/document.")
        unknown = set(operation) - {"op", "action", "collection", "id", "document", "if_match"}
        if unknown:
            raise Invalid(f"Unknown keys in operation: {', '.join(sorted(unknown))}.")
        op, collection = operation.get("op", operation.get("action")), operation.get("collection")
        if op not in BATCH_OPS:
            raise Invalid(f"'op' must be one of {', '.join(BATCH_OPS)}.")
        if not isinstance(collection, str):
            raise Invalid("'collection' names the collection.")
        if_match = operation.get("if_match")
        if if_match is not None and not isinstance(if_match, str):
            raise Invalid("'if_match' is an ETag string.")
        if op == "create":
            return {"status": 201, "document": self.create(principal, collection, operation.get("document"))}
        doc_id = operation.get("id")
        if not isinstance(doc_id, str):
            raise Invalid(f"'{op}' needs the document 'id'.")
        if op == "delete":
            self.delete(principal, collection, doc_id, if_match)
            return {"status": 204}
        if op == "replace":
            doc = self.replace(principal, collection, doc_id, operation.get("document"), if_match)
        else:
            doc = self.update(principal, collection, doc_id, operation.get("document"), if_match)
        return {"status": 200, "document": doc}


class _Unset:
    def __repr__(self):
        return "UNSET"


_UNSET = _Unset()
# Exact types only: a subclass of dict or list (from a plugin or a batch) must not pass for a scalar.
_SCALARS = frozenset({str, int, float, bool, type(None)})
