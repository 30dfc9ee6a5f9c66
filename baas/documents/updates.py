"""PATCH bodies: a shallow merge of fields, or a safe subset of MongoDB update operators.

The update is applied here to the current document rather than sent to MongoDB as is, so the result can be
checked against the schema and the access rule before it is written (conditionally on the revision read).
"""
from __future__ import annotations

from baas.errors import Invalid
from baas.query import check_document_keys, check_path
from baas.rules import same_value

OPERATORS = ("$set", "$unset", "$inc", "$push", "$addToSet", "$pull")
MAX_EACH = 1000


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
            _put(node, key, current + operand, path)
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
