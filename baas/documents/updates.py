"""PATCH bodies: a shallow merge of fields, or a safe subset of MongoDB update operators.

An update is first applied here to a copy of the document read, so its result can be checked against the
schema and the access rule before anything is written. It is then written one of two ways:

- atomically, as the operators themselves, in one `find_one_and_update` whose filter holds guards on the
  fields it reads (`plan_atomic`). That is chosen only when the checked result cannot depend on what a
  concurrent writer did in between: every field the update reads is constrained by the schema in a way the
  operator preserves (a plain `type: integer` counter, an array whose `items` each pushed value satisfies),
  and the guards hold the rest: the document's shape (`shape_of`: no field changed type or appeared) and a
  counter's range that keeps its result in int64. Concurrent `$inc`s, `$push`es and `$addToSet`s then all
  succeed and add up.
- otherwise as the whole checked document, replaced only if the document is still at the revision read
  (bounds, enums, cross-field schema keywords, rule fields, unique-index fields, If-Match, plugin changes).
"""
from __future__ import annotations

import hashlib
import math
from datetime import datetime

import orjson

from baas.errors import Invalid
from baas.query import _sort_type, and_filters, check_document_keys, check_path
from baas.rules import same_value

OPERATORS = ("$set", "$unset", "$inc", "$push", "$addToSet", "$pull")
MAX_EACH = 1000
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
# A float increment is applied atomically only while both sides stay below this, so the sum stays finite.
FLOAT_ATOMIC_BOUND = 1e300
ARRAY_OPERATORS = ("$push", "$addToSet", "$pull")
# Keywords that describe a value without constraining it (formats only ever check strings).
_ANNOTATIONS = frozenset({"title", "description", "$comment", "default", "examples", "deprecated", "readOnly",
                          "writeOnly", "format", "$anchor", "x-ref"})
# Root keywords that constrain each top-level field on its own, so fields an update does not read cannot
# make its result invalid.
_FIELDWISE_ROOT = frozenset({"type", "properties", "required", "additionalProperties", "$schema", "$id", "$defs",
                             "definitions", "propertyNames"})


def _fail(message: str, detail: str | None = None):
    raise Invalid(message, errors={"update": [detail or message]})


def parse_patch(body) -> list[tuple[str, str, object]]:
    """Return [(operator, path, operand)] after checking every path and value."""
    if not isinstance(body, dict) or not body:
        _fail("Send a JSON object with the fields to change, or update operators such as {\"$set\": {...}}.")
    dollar = [k.startswith("$") for k in body]
    if any(dollar) and not all(dollar):
        _fail("A PATCH body is either plain fields or update operators, not both.")
    if not any(dollar):
        body = {"$set": body}
    operations = []
    for op, fields in body.items():
        if op not in OPERATORS:
            _fail(f"Update operator '{op}' is not allowed; use {', '.join(OPERATORS)}.", f"Operator not allowed: {op}")
        if not isinstance(fields, dict) or not fields:
            _fail(f"'{op}' takes an object of field paths.")
        for path, operand in fields.items():
            check_path(path, "update")
            if path.split(".")[0].startswith("_"):
                _fail(f"'{path}' is a system field and cannot be changed.", f"System field: {path}")
            if op == "$inc" and (not isinstance(operand, (int, float)) or isinstance(operand, bool)):
                _fail(f"'$inc' on '{path}' takes a number.")
            if op in ("$push", "$addToSet") and isinstance(operand, dict) and "$each" in operand:
                if set(operand) != {"$each"} or not isinstance(operand["$each"], list) \
                        or len(operand["$each"]) > MAX_EACH:
                    _fail(f"'{op}' on '{path}' takes a value or {{\"$each\": [...]}} (at most {MAX_EACH} values).")
                check_document_keys(operand["$each"], "update")
            elif op == "$pull" and isinstance(operand, dict) and set(operand) == {"$in"}:
                if not isinstance(operand["$in"], list):
                    _fail(f"'$pull' on '{path}' takes a value or {{\"$in\": [...]}}.")
                check_document_keys(operand["$in"], "update")
            else:
                check_document_keys({"v": operand}, "update")
            operations.append((op, path, operand))
    paths = sorted(path for _, path, _ in operations)
    for first, second in zip(paths, paths[1:]):
        if first == second or second.startswith(first + "."):
            _fail(f"'{first}' and '{second}' conflict in one update.", f"Conflicting paths: {first}, {second}")
    return operations


def _parent(doc: dict, path: str, create: bool):
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit():
            index = int(part)
            if index >= len(node):
                if not create:
                    return None, parts[-1]
                _fail(f"'{path}': index {index} is past the end of the list.")
            node = node[index]
            continue
        if not isinstance(node, dict):
            if not create:
                return None, parts[-1]
            _fail(f"'{path}' goes through a value that is not an object.")
        if part not in node:
            if not create:
                return None, parts[-1]
            node[part] = {}
        node = node[part]
    if not isinstance(node, (dict, list)):
        if not create:
            return None, parts[-1]
        _fail(f"'{path}' goes through a value that is not an object.")
    return node, parts[-1]


def _get(node, key):
    if isinstance(node, list):
        return node[int(key)] if key.isdigit() and int(key) < len(node) else None
    return node.get(key)


def _put(node, key, value, path):
    if isinstance(node, list):
        if not key.isdigit() or int(key) >= len(node):
            _fail(f"'{path}': not an index within the list.")
        node[int(key)] = value
    else:
        node[key] = value


def apply_patch(doc: dict, operations) -> dict:
    """Apply parsed operations to `doc` (changed in place and returned)."""
    for op, path, operand in operations:
        if op == "$unset":
            node, key = _parent(doc, path, create=False)
            if isinstance(node, dict):
                node.pop(key, None)
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node[int(key)] = None
            continue
        if op == "$pull":
            node, key = _parent(doc, path, create=False)
            current = _get(node, key) if node is not None else None
            if current is None:
                continue
            if not isinstance(current, list):
                _fail(f"'$pull' needs '{path}' to be a list.")
            drop = operand["$in"] if isinstance(operand, dict) and set(operand) == {"$in"} else [operand]
            _put(node, key, [item for item in current if not any(same_value(item, d) for d in drop)], path)
            continue
        node, key = _parent(doc, path, create=True)
        current = _get(node, key)
        if op == "$set":
            _put(node, key, operand, path)
        elif op == "$inc":
            if current is None:
                current = 0
            elif not isinstance(current, (int, float)) or isinstance(current, bool):
                _fail(f"'$inc' needs '{path}' to be a number.")
            _put(node, key, _checked_sum(current, operand, path), path)
        elif op in ("$push", "$addToSet"):
            if current is None:
                current = []
            elif not isinstance(current, list):
                _fail(f"'{op}' needs '{path}' to be a list.")
            values = operand["$each"] if isinstance(operand, dict) and "$each" in operand else [operand]
            current = list(current)
            for value in values:
                if op == "$push" or not any(same_value(item, value) for item in current):
                    current.append(value)
            _put(node, key, current, path)
    return doc


def _checked_sum(current, operand, path: str):
    total = current + operand
    if isinstance(total, int) and not INT64_MIN <= total <= INT64_MAX or isinstance(total, float) \
            and not math.isfinite(total):
        _fail(f"'$inc' would take '{path}' outside the number range (64-bit integers, finite numbers).",
              f"Result out of range: {path}")
    return total


# --- atomic writes -------------------------------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _constraints(schema) -> set | None:
    """The constraining keywords of a subschema (None for `false`)."""
    if schema is True or schema is None:
        return set()
    if schema is False or not isinstance(schema, dict):
        return None
    return {key for key in schema if key not in _ANNOTATIONS and not key.startswith("x-")}


def _types(schema) -> set:
    declared = schema.get("type") if isinstance(schema, dict) else None
    if declared is None:
        return set()
    return set(declared) if isinstance(declared, list) else {declared}


def _field_schema(schema: dict, field: str):
    properties = schema.get("properties") or {}
    if field in properties:
        return properties[field]
    return schema.get("additionalProperties", True)


def _preserved(schema, op: str, operand, dotted: bool) -> bool:
    """Whether `op` keeps a field valid under `schema` whatever valid value the field had before."""
    keys = _constraints(schema)
    if keys is None:
        return False
    types = _types(schema)
    if dotted:
        return keys <= {"type"} and types <= {"object"}
    if op in ("$set", "$unset"):
        return True
    if op == "$inc":
        allowed = {"number"} if isinstance(operand, float) else {"number", "integer"}
        return keys <= {"type"} and (not types or bool(types & allowed) and types <= {"number", "integer"})
    return keys <= {"type", "items"} and types <= {"array"}


def _plain_value(value, in_array: bool) -> bool:
    """Values every backend stores as sent by an operator (the embedded one turns booleans into 1/0, dates
    into strings, and arrays or objects pushed into an array into JSON text)."""
    if isinstance(value, (bool, datetime)):
        return False
    if isinstance(value, dict):
        return not in_array and all(_plain_value(item, False) for item in value.values())
    if isinstance(value, list):
        return not in_array and all(_plain_value(item, False) for item in value)
    return True


def _array_values(operand) -> list:
    if isinstance(operand, dict) and ("$each" in operand or "$in" in operand):
        return operand.get("$each", operand.get("$in"))
    return [operand]


def _lookup(doc: dict, parts: list):
    """(found, value) of a path through objects only."""
    node = doc
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _value_guard(op: str, path: str, operand, previous: dict):
    """The filter under which `op` on `path` gives what it gave on `previous` (given the same shape), or None."""
    found, value = _lookup(previous, path.split("."))
    if op == "$inc" and found:
        if isinstance(operand, float) or isinstance(value, float):
            if abs(operand) > FLOAT_ATOMIC_BOUND:
                return None
            low, high = -FLOAT_ATOMIC_BOUND, FLOAT_ATOMIC_BOUND
        else:
            low, high = INT64_MIN - min(operand, 0), INT64_MAX - max(operand, 0)
        if not (_is_number(value) and low <= value <= high):
            return None
        return {path: {"$gte": low, "$lte": high}}
    if op in ("$addToSet", "$pull") and not isinstance(value, list):
        # The embedded database ignores $addToSet on a missing field: only existing arrays go atomically.
        return None
    return {}


def shape_of(data: dict) -> str:
    """A digest of the document's type skeleton: which fields exist, nested objects included, and the JSON
    type of each (array contents aside). System fields ('_...') are left out.

    Stored with every document as `_shape`, it lets an atomic update demand, in one fast equality, that no
    field changed type or appeared since it was read: MongoDB would refuse an operator on a value of the
    wrong type, but the embedded database applies `$push` to a number or `$inc` to a boolean silently.
    """
    # A create or replace body usually has the fields and types of the one before it: a document of top-level
    # JSON scalars and arrays (any content) has the digest of its keys and their types, looked up.
    signature = (tuple(data), tuple(map(type, data.values())))
    found = _SHAPES.get(signature)
    if found is None:
        found = hashlib.blake2b(_skeleton(data, True).encode(), digest_size=8).hexdigest()
        if all(kind in _JSON_TYPE_NAMES or key.startswith("_") for key, kind in zip(*signature)):
            if len(_SHAPES) >= 1024:
                _SHAPES.clear()
            _SHAPES[signature] = found
    return found


_SHAPES: dict = {}


# _sort_type's answer for the exact types JSON bodies hold, looked up rather than tested in turn: every create
# and replace computes a shape, one entry per field. Subclasses and other types still go through _sort_type.
_JSON_TYPE_NAMES = {bool: "bool", int: "number", float: "number", str: "string", list: "array",
                    type(None): "null"}


def _skeleton(value, top: bool = False) -> str:
    if isinstance(value, dict):
        parts = []
        for key, item in sorted(value.items()):
            if top and key.startswith("_"):
                continue
            name = _JSON_TYPE_NAMES.get(type(item))
            if name is None:
                name = _skeleton(item)
            # orjson's encoding of a key with nothing to escape is the key in quotes.
            quoted = f'"{key}"' if key.isascii() and key.isprintable() and '"' not in key and "\\" not in key \
                else orjson.dumps(key).decode()
            parts.append(f"{quoted}:{name}")
        return "{" + ",".join(parts) + "}"
    return _sort_type(value) or "null"


def filter_fields(query) -> frozenset:
    """The top-level fields a compiled filter reads."""
    fields = set()
    if isinstance(query, dict):
        for key, condition in query.items():
            if key in ("$and", "$or", "$nor"):
                for part in condition:
                    fields |= filter_fields(part)
            elif not key.startswith("$"):
                fields.add(key.split(".")[0])
    return frozenset(fields)


def plan_atomic(operations, previous: dict, *, schema: dict | None, fixed_fields: frozenset):
    """(guard filter, update document) applying `operations` in the database with the result they had on
    `previous`, on any document the guard matches; None when only a revision-guarded replace is safe.

    The guard holds the shape `previous` had (no field changed type or appeared since) and, for counters,
    the range that keeps the result in int64. `fixed_fields` are top-level fields that must go the safe
    way (date fields, fields of unique indexes, fields the access rule reads).
    """
    if "_shape" not in previous:
        return None  # written before shapes were stored: the guarded replace adds it
    if schema is not None and not (_constraints(schema) or set()) <= _FIELDWISE_ROOT | {"type"}:
        return None
    guards, update = [{"_shape": previous["_shape"]}], {}
    for op, path, operand in operations:
        parts = path.split(".")
        if parts[0] in fixed_fields or any(part.isdigit() for part in parts):
            return None
        if op in ARRAY_OPERATORS:
            if not all(_plain_value(value, True) for value in _array_values(operand)):
                return None
        elif not _plain_value(operand, False):
            return None
        if schema is not None and not _preserved(_field_schema(schema, parts[0]), op, operand, len(parts) > 1):
            return None
        guard = _value_guard(op, path, operand, previous)
        if guard is None:
            return None
        guards.append(guard)
        update.setdefault(op, {})[path] = "" if op == "$unset" else operand
    return and_filters(*guards), update
