"""Collection definitions: JSON Schema, indexes and access rules, checked once and compiled for the hot path.

Definitions live in each project's `_collections` collection (names starting with '_' are the system's).
A collection's documents live in the storage collection `storage_name(name)` ("c_" + the API name), so no API
name can be misread by a backend (the embedded database turns names into SQL table names, where `select` or
`order` are keywords) or collide with a system collection.
Schemas and rules are stored as JSON text because both legitimately contain keys starting with '$'
(`$schema`, `$defs`, `$in`), which MongoDB does not accept as stored field names everywhere.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import jsonschema
import orjson
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable

from baas import rules as rules_module
from baas import safe_regex, strictjson
from baas.errors import Invalid
from baas.query import SYSTEM_DATE_FIELDS, check_collection_name, check_path, parse_iso_datetime
from baas.util import iso_utc, utcnow

DEFINITIONS = "_collections"
SYSTEM_FIELDS = ("_id", "_created", "_updated", "_owner", "_rev", "_shape")
# Stored for the server's own use (see updates.shape_of) and never shown to clients.
INTERNAL_FIELDS = ("_shape",)
INDEX_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MAX_INDEXES = 32
MAX_INDEX_FIELDS = 8
MAX_SCHEMA_BYTES = 65_536
MAX_SCHEMA_ERRORS = 20
OWNER_INDEX = "sys_owner"
STORAGE_PREFIX = "c_"


def storage_name(name: str) -> str:
    """The storage collection that holds the documents of API collection `name` (a checked name)."""
    return STORAGE_PREFIX + name


def _date_format_ok(value) -> bool:
    return not isinstance(value, str) or parse_iso_datetime(value) is not None and len(value) > 10


def _date_only_format_ok(value) -> bool:
    return not isinstance(value, str) or len(value) == 10 and parse_iso_datetime(value) is not None


def _format_checker():
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(_date_format_ok)
    checker.checks("date")(_date_only_format_ok)
    return checker


FORMAT_CHECKER = _format_checker()
_REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# An empty registry: jsonschema would otherwise fetch unknown references with urlopen (http://, file://),
# letting a schema read the server's files or make it send requests.
_NO_REMOTE_SCHEMAS = Registry()


_UNRESOLVED = object()


def _resolve_pointer(root, pointer: str):
    """The part of `root` a JSON pointer ('/a/0/b', '' for the root) names, or _UNRESOLVED."""
    node = root
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _UNRESOLVED
    return node


def _pointer_resolves(root, pointer: str) -> bool:
    return _resolve_pointer(root, pointer) is not _UNRESOLVED


# Keywords whose subschemas apply to the same value (they do not step into the document).
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_SCHEMAS = ("not", "if", "then", "else")


def _in_place_parts(root, node: dict):
    for keyword in _IN_PLACE_LISTS:
        parts = node.get(keyword)
        if isinstance(parts, list):
            yield from (part for part in parts if isinstance(part, dict))
    for keyword in _IN_PLACE_SCHEMAS:
        if isinstance(node.get(keyword), dict):
            yield node[keyword]
    dependent = node.get("dependentSchemas")
    if isinstance(dependent, dict):
        yield from (part for part in dependent.values() if isinstance(part, dict))
    for keyword in _REFERENCE_KEYWORDS:
        target = node.get(keyword)
        if isinstance(target, str) and target.startswith("#"):
            resolved = _resolve_pointer(root, target[1:])
            if isinstance(resolved, dict):
                yield resolved


def _check_reference_cycles(root) -> None:
    """A `$ref` that leads back to itself without stepping into the document (`{"$ref": "#"}` at the root,
    two definitions referring to each other) makes every validation recurse forever."""
    done: set = set()

    def visit(node: dict, path: list):
        if id(node) in done:
            return
        if any(node is ancestor for ancestor in path):
            raise Invalid("'schema' refers to itself without stepping into the document (a $ref cycle through "
                          "allOf/anyOf/oneOf/not/if or $ref alone), so no document could ever be checked.",
                          errors={"schema": ["$ref cycle"]})
        path.append(node)
        for part in _in_place_parts(root, node):
            visit(part, path)
        path.pop()
        done.add(id(node))

    def every_schema(node):
        if isinstance(node, dict):
            yield node
            for key, value in node.items():
                if key not in _DATA_KEYWORDS:
                    yield from every_schema(value)
        elif isinstance(node, list):
            for value in node:
                yield from every_schema(value)

    for schema in every_schema(root):
        visit(schema, [])


def _check_local_references(root, node, path: str = "") -> None:
    if isinstance(node, dict):
        for keyword in _REFERENCE_KEYWORDS:
            target = node.get(keyword)
            if target is None:
                continue
            where = path or "(root)"
            if not (isinstance(target, str) and target.startswith("#")):
                raise Invalid(f"'schema' may only refer to its own parts ('#/...'); {keyword} at {where} is "
                              f"{target!r}.", errors={"schema": [f"{where}: only local {keyword} allowed"]})
            if target.startswith("#/") and not _pointer_resolves(root, target[1:]):
                raise Invalid(f"'schema' refers to {target!r} at {where}, which it does not have.",
                              errors={"schema": [f"{where}: unresolvable {keyword} {target}"]})
        for key, value in node.items():
            _check_local_references(root, value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_local_references(root, value, f"{path}/{index}")


_DATA_KEYWORDS = ("const", "enum", "default", "examples")  # values, not schemas: a "pattern" key there is data


def _check_patterns(node, path: str = "") -> None:
    """jsonschema runs `pattern` and `patternProperties` with Python's backtracking engine on every write."""
    if isinstance(node, dict):
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            safe_regex.check_pattern(pattern, what=f"'pattern' at {path or '(root)'}", where="schema")
        properties = node.get("patternProperties")
        if isinstance(properties, dict):
            for key in properties:
                safe_regex.check_pattern(key, what=f"'patternProperties' at {path or '(root)'}", where="schema")
        for key, value in node.items():
            if key not in _DATA_KEYWORDS:
                _check_patterns(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_patterns(value, f"{path}/{index}")


def check_schema(schema):
    """Validate an admin's JSON Schema (or None); return it unchanged."""
    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise Invalid("'schema' must be a JSON Schema object or null.", errors={"schema": ["Must be an object."]})
    # NaN would be stored as null (and break every later write); the body parser refuses it, callers in Python too.
    strictjson.check_value(schema, "schema", "schema")
    if len(orjson.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise Invalid(f"'schema' is larger than {MAX_SCHEMA_BYTES} bytes.", errors={"schema": ["Too large."]})
    if schema.get("type", "object") != "object":
        raise Invalid("A collection schema describes objects: its 'type' must be 'object'.",
                      errors={"schema": ["type must be 'object'."]})
    _check_local_references(schema, schema)
    _check_patterns(schema)
    _check_reference_cycles(schema)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise Invalid(f"'schema' is not a valid JSON Schema at {where}: {exc.message}",
                      errors={"schema": [f"{where}: {exc.message}"]}) from None
    for field, spec in (schema.get("properties") or {}).items():
        target = _reference(spec)[0] if isinstance(spec, dict) else None
        if target is not None:
            try:
                check_collection_name(target)
            except Invalid:
                raise Invalid(f"'x-ref' of '{field}' must name a collection.",
                              errors={"schema": [f"{field}: bad x-ref"]}) from None
    return schema


def _reference(spec: dict):
    """(target collection, holds a list) for a property declared as a reference, else (None, False)."""
    if isinstance(spec.get("x-ref"), str):
        return spec["x-ref"], False
    items = spec.get("items")
    if spec.get("type") == "array" and isinstance(items, dict) and isinstance(items.get("x-ref"), str):
        return items["x-ref"], True
    return None, False


SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean", "null"})
SCALAR_SYSTEM_FIELDS = frozenset({"_owner", "_rev", "_shape"})


def _declares_scalar(spec) -> bool:
    """Whether a property's schema lets it hold only strings, numbers, booleans or null."""
    if not isinstance(spec, dict):
        return False
    declared = spec.get("type")
    types = set(declared) if isinstance(declared, list) else {declared}
    return bool(types) and types <= SCALAR_TYPES and types != {"null"}


def check_indexes(indexes) -> list[dict]:
    if indexes is None:
        return []
    if not isinstance(indexes, list) or len(indexes) > MAX_INDEXES:
        raise Invalid(f"'indexes' must be a list of at most {MAX_INDEXES} indexes.",
                      errors={"indexes": ["Must be a list."]})
    checked, names = [], set()
    for position, index in enumerate(indexes):
        where = f"indexes[{position}]"
        if not isinstance(index, dict):
            raise Invalid(f"{where} must be an object.", errors={"indexes": [f"{where}: not an object"]})
        unknown = set(index) - {"name", "keys", "unique", "expire_after_seconds"}
        if unknown:
            raise Invalid(f"{where} has unknown keys: {', '.join(sorted(unknown))}.",
                          errors={"indexes": [f"{where}: unknown keys"]})
        name = index.get("name")
        if not isinstance(name, str) or not INDEX_NAME.match(name) or name.startswith("sys_"):
            raise Invalid(f"{where}: an index name starts with a letter, has at most 64 letters, digits and '_', "
                          f"and does not start with 'sys_'.", errors={"indexes": [f"{where}: invalid name"]})
        if name in names:
            raise Invalid(f"Two indexes are named '{name}'.", errors={"indexes": [f"duplicate name {name}"]})
        names.add(name)
        keys = index.get("keys")
        if not isinstance(keys, dict) or not keys or len(keys) > MAX_INDEX_FIELDS:
            raise Invalid(f"{where}: 'keys' maps 1 to {MAX_INDEX_FIELDS} fields to 1 or -1.",
                          errors={"indexes": [f"{where}: invalid keys"]})
        for field, direction in keys.items():
            check_path(field, "indexes")
            if direction not in (1, -1) or isinstance(direction, bool):
                raise Invalid(f"{where}: direction of '{field}' must be 1 or -1.",
                              errors={"indexes": [f"{where}: invalid direction"]})
        unique = index.get("unique", False)
        if not isinstance(unique, bool):
            raise Invalid(f"{where}: 'unique' must be true or false.", errors={"indexes": [f"{where}: unique"]})
        expire = index.get("expire_after_seconds")
        if expire is not None:
            if not isinstance(expire, int) or isinstance(expire, bool) or expire < 0:
                raise Invalid(f"{where}: 'expire_after_seconds' must be a non-negative integer or null.",
                              errors={"indexes": [f"{where}: expire_after_seconds"]})
            if len(keys) != 1:
                raise Invalid(f"{where}: a TTL index ('expire_after_seconds') has exactly one field.",
                              errors={"indexes": [f"{where}: TTL needs one field"]})
        checked.append({"name": name, "keys": dict(keys), "unique": unique, "expire_after_seconds": expire})
    return checked


class Definition:
    """One collection's definition, with everything the request path needs precomputed."""

    __slots__ = ("project_id", "name", "schema", "indexes", "rules", "created_at", "updated_at", "defined",
                 "collection", "validator", "date_fields", "query_date_fields", "date_only_fields", "refs",
                 "prepared_rules", "ttl", "guarded_fields", "scalar_fields", "index_keys")

    def __init__(self, project_id: str, name: str, collection, *, schema=None, indexes=(), rules=None,
                 created_at=None, updated_at=None, defined: bool = False):
        self.project_id = project_id
        self.name = name
        self.collection = collection
        self.schema = schema
        self.indexes = list(indexes)
        self.rules = rules
        self.created_at = created_at
        self.updated_at = updated_at
        self.defined = defined
        self.validator = None
        dates, date_only, refs = set(), set(), {}
        if schema is not None:
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            self.validator = cls(schema, format_checker=FORMAT_CHECKER, registry=_NO_REMOTE_SCHEMAS)
            for field, spec in (schema.get("properties") or {}).items():
                if not isinstance(spec, dict):
                    continue
                if spec.get("format") in ("date", "date-time"):
                    dates.add(field)
                    if spec["format"] == "date":
                        date_only.add(field)
                target, many = _reference(spec)
                if target is not None:
                    refs[field] = (target, many)
        self.date_fields = frozenset(dates)
        # Fields that never hold an array (or an object): equality on them needs no array-membership test,
        # which lets the embedded database answer it from an index (see storage.mongo.embedded_find_command).
        self.scalar_fields = SCALAR_SYSTEM_FIELDS | frozenset(
            field for field, spec in ((schema or {}).get("properties") or {}).items() if _declares_scalar(spec))
        # The fields of every index the collection has (its own and the owner index), in order.
        self.index_keys = tuple(tuple(i["keys"]) for i in self.indexes) + (("_owner",),)
        self.query_date_fields = frozenset(dates) | SYSTEM_DATE_FIELDS
        self.date_only_fields = tuple(date_only)
        self.refs = refs
        self.prepared_rules = {action: rules_module.prepare_rule(rule, self.query_date_fields)
                               for action, rule in rules.items()}
        self.ttl = tuple((next(iter(i["keys"])), i["expire_after_seconds"]) for i in self.indexes
                         if i.get("expire_after_seconds") is not None)
        # Updates of these are written as revision-guarded replaces: an atomic update that breaks a unique
        # index is not reported as such by the embedded database.
        self.guarded_fields = frozenset(field.split(".")[0] for i in self.indexes
                                        if i.get("unique") or i.get("expire_after_seconds") is not None
                                        for field in i["keys"])

    @classmethod
    def from_stored(cls, project_id: str, collection, doc: dict) -> "Definition":
        return cls(project_id, doc["_id"], collection,
                   schema=orjson.loads(doc["schema_json"]) if doc.get("schema_json") else None,
                   indexes=doc.get("indexes") or [],
                   rules=orjson.loads(doc["rules_json"]),
                   created_at=doc.get("created_at"), updated_at=doc.get("updated_at"), defined=True)

    def to_stored(self) -> dict:
        return {"_id": self.name,
                "schema_json": orjson.dumps(self.schema).decode() if self.schema is not None else None,
                "indexes": self.indexes, "rules_json": orjson.dumps(self.rules).decode(),
                "created_at": self.created_at, "updated_at": self.updated_at}

    def describe(self) -> dict:
        return {"name": self.name, "schema": self.schema, "indexes": self.indexes, "rules": self.rules,
                "created_at": self.created_at, "updated_at": self.updated_at}

    def access(self, principal, action: str):
        return rules_module.evaluate(self.prepared_rules.get(action, "none"), principal, action)

    def may_hold_strings(self, path: str) -> bool:
        """Whether the schema lets `path` hold a string (True when it does not say)."""
        if self.schema is None or "." in path:
            return True
        spec = (self.schema.get("properties") or {}).get(path)
        declared = spec.get("type") if isinstance(spec, dict) else None
        if declared is None:
            return True
        return "string" in (declared if isinstance(declared, list) else [declared])

    def expiry_filter(self) -> dict | None:
        """Documents past a TTL index's expiry are hidden even before the server deletes them."""
        if not self.ttl:
            return None
        now = utcnow()
        parts = [{"$nor": [{field: {"$lte": now - timedelta(seconds=seconds)}}]} for field, seconds in self.ttl]
        return parts[0] if len(parts) == 1 else {"$and": parts}

    # --- documents in and out ------------------------------------------------------------------------------

    def validate(self, data: dict) -> dict:
        """Check client data (JSON form, no system fields) against the schema; return its stored form."""
        if self.validator is None:
            return data
        errors = {}
        try:
            for error in self.validator.iter_errors(data):
                where = ".".join(str(p) for p in error.absolute_path) or "(document)"
                errors.setdefault(where, []).append(error.message)
                if len(errors) >= MAX_SCHEMA_ERRORS:
                    break
        except Unresolvable as exc:
            raise Invalid(f"The collection's schema refers to a part it does not have ({exc.ref}); an admin must "
                          f"fix the schema.", errors={"schema": [f"unresolvable reference {exc.ref}"]}) from None
        except RecursionError:  # a definition stored before cycles were refused at definition time
            raise Invalid("The collection's schema refers to itself in a loop; an admin must fix the schema.",
                          errors={"schema": ["$ref cycle"]}) from None
        if errors:
            first = next(iter(errors.items()))
            raise Invalid(f"The document does not match the collection's schema: {first[0]}: {first[1][0]}",
                          errors=errors)
        for field in self.date_fields:
            value = data.get(field)
            if isinstance(value, str):
                data[field] = parse_iso_datetime(value)
        return data

    def json_form(self, data: dict) -> dict:
        """Stored data back in the form clients send (dates as ISO strings), for re-validation."""
        for field in self.date_fields:
            value = data.get(field)
            if isinstance(value, datetime):
                data[field] = value.date().isoformat() if field in self.date_only_fields else iso_utc(value)
        return data

    def output(self, doc: dict) -> dict:
        """A stored document as clients see it (changed in place and returned)."""
        for field in INTERNAL_FIELDS:
            doc.pop(field, None)
        for field in self.date_only_fields:
            value = doc.get(field)
            if isinstance(value, datetime):
                doc[field] = value.date().isoformat()
        return doc


