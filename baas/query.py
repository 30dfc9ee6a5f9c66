"""Client query input made safe: filter whitelist, field names, sort, projection, limits and cursors.

Everything a client sends that ends up in a MongoDB query passes through here first. Filters are checked
against a whitelist of operators (anything else is a 400 naming the operator), bounded in depth, size and
regex length, and rewritten where the stored form differs from the JSON form (ISO strings on date fields
become datetimes; `$not` becomes `$nor`, which is equivalent on MongoDB and implemented everywhere).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import date, datetime, timezone

import orjson

from baas import safe_regex, strictjson
from baas.errors import Invalid

MAX_DEPTH = 8              # nesting of operators and sub-filters in one filter
MAX_NODES = 500            # values visited in one filter
MAX_LIST = 1000            # items in $in / $nin / $all
MAX_REGEX = safe_regex.MAX_LENGTH  # characters in a $regex pattern (config: query.max_regex_length)
MAX_FILTER_BYTES = 16_384
MAX_SORT_FIELDS = 8
MAX_FIELDS = 100
MAX_LIMIT = 1000
DEFAULT_LIMIT = 20
MAX_OFFSET = 10_000
MAX_PATH_SEGMENTS = 10

COMPARISON = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"}
FIELD_OPERATORS = COMPARISON | {"$in", "$nin", "$exists", "$regex", "$options", "$not", "$all", "$elemMatch",
                                "$size"}
LOGICAL = {"$and", "$or", "$nor"}

COLLECTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SEGMENT = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_-]{0,127})$")
SYSTEM_DATE_FIELDS = frozenset({"_created", "_updated"})


def check_collection_name(name) -> str:
    if not isinstance(name, str) or not COLLECTION_NAME.match(name):
        raise Invalid("A collection name starts with a letter and has at most 64 letters, digits and '_'; names "
                      "starting with '_' are reserved for the system.", errors={"name": ["Invalid collection name."]})
    return name


def check_document_id(doc_id) -> str:
    if not isinstance(doc_id, str) or not DOCUMENT_ID.match(doc_id):
        raise Invalid("A document id has 1 to 64 letters, digits, '_' or '-'.", errors={"_id": ["Invalid id."]})
    return doc_id


def check_path(path, where: str = "filter") -> str:
    """A field path as used in filters, sorts and update operators: dot-separated plain names."""
    if not isinstance(path, str) or not path:
        raise Invalid(f"Empty field name in {where}.", errors={where: ["Empty field name."]})
    segments = path.split(".")
    if len(segments) > MAX_PATH_SEGMENTS or not all(_SEGMENT.match(s) for s in segments):
        if path.startswith("$"):
            raise Invalid(f"Operator '{path}' is not allowed in {where}.",
                          errors={where: [f"Operator not allowed: {path}"]})
        raise Invalid(f"Invalid field name '{path}' in {where}: use letters, digits, '_' and '-', separated by dots.",
                      errors={where: [f"Invalid field name: {path}"]})
    return path


def parse_json_param(text: str, name: str):
    if len(text) > MAX_FILTER_BYTES:
        raise Invalid(f"'{name}' is longer than {MAX_FILTER_BYTES} bytes.", errors={name: ["Too long."]})
    return strictjson.loads(text, where=f"'{name}' parameter", location=name)


def parse_iso_datetime(value: str) -> datetime | None:
    """ISO 8601 date or date-time -> aware UTC datetime (ms precision, as BSON stores it); None if not ISO."""
    if not isinstance(value, str) or len(value) < 10 or len(value) > 40 or not value[:4].isdigit():
        return None
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    parsed = parsed.astimezone(timezone.utc)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


class FilterCompiler:
    """Validates one client filter and returns its MongoDB form."""

    def __init__(self, date_fields=frozenset(), where: str = "filter", max_regex: int = MAX_REGEX):
        self.date_fields = date_fields
        self.where = where
        self.max_regex = max_regex
        self.nodes = 0

    def _fail(self, message: str, detail: str):
        raise Invalid(message, errors={self.where: [detail]})

    def _count(self):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self._fail(f"The {self.where} is too large (more than {MAX_NODES} values).", "Too large.")

    def compile(self, query, depth: int = 0) -> dict:
        if not isinstance(query, dict):
            self._fail(f"The {self.where} must be a JSON object.", "Must be an object.")
        if depth > MAX_DEPTH:
            self._fail(f"The {self.where} is nested deeper than {MAX_DEPTH} levels.", "Nested too deeply.")
        out: dict = {}
        extra: list = []
        for key, value in query.items():
            self._count()
            if key.startswith("$"):
                if key not in LOGICAL:
                    self._fail(f"Operator '{key}' is not allowed in {self.where}; top-level operators are "
                               f"{', '.join(sorted(LOGICAL))}.", f"Operator not allowed: {key}")
                if not isinstance(value, list) or not value:
                    self._fail(f"'{key}' takes a non-empty list of filters.", f"{key} needs a non-empty list.")
                if len(value) > MAX_LIST:
                    self._fail(f"'{key}' has more than {MAX_LIST} items.", f"{key} too long.")
                out[key] = [self.compile(item, depth + 1) for item in value]
                continue
            check_path(key, self.where)
            condition, negated = self._condition(key, value, depth + 1)
            if condition is not _NOTHING:
                out[key] = condition
            extra.extend({"$nor": [{key: n}]} for n in negated)
        if extra:
            if out:
                extra.insert(0, out)
            return extra[0] if len(extra) == 1 else {"$and": extra}
        return out

    def _condition(self, path: str, value, depth: int):
        """Return (condition or _NOTHING, [negated conditions]) for one field."""
        if depth > MAX_DEPTH:
            self._fail(f"The {self.where} is nested deeper than {MAX_DEPTH} levels.", "Nested too deeply.")
        if isinstance(value, dict) and value and any(k.startswith("$") for k in value):
            if not all(k.startswith("$") for k in value):
                self._fail(f"Field '{path}' mixes operators and field names.", f"Mixed operators in {path}.")
            return self._operators(path, value, depth)
        return self._value(path, value, depth), []

    def _operators(self, path: str, ops: dict, depth: int):
        out: dict = {}
        negated: list = []
        for op, operand in ops.items():
            self._count()
            if op not in FIELD_OPERATORS:
                self._fail(f"Operator '{op}' is not allowed in {self.where}.", f"Operator not allowed: {op}")
            if op in COMPARISON:
                out[op] = self._value(path, operand, depth)
            elif op in ("$in", "$nin", "$all"):
                if not isinstance(operand, list) or len(operand) > MAX_LIST:
                    self._fail(f"'{op}' on '{path}' takes a list of at most {MAX_LIST} values.", f"{op} needs a list.")
                # A list subclass is a placeholder (an access-rule variable) filled in per request.
                out[op] = operand if type(operand) is not list \
                    else [self._value(path, item, depth) for item in operand]
            elif op == "$exists":
                if not isinstance(operand, bool):
                    self._fail(f"'$exists' on '{path}' takes true or false.", "$exists needs a boolean.")
                out[op] = operand
            elif op == "$size":
                if not isinstance(operand, int) or isinstance(operand, bool) or operand < 0:
                    self._fail(f"'$size' on '{path}' takes a non-negative integer.", "$size needs an integer.")
                out[op] = operand
            elif op == "$regex":
                out[op] = safe_regex.check_pattern(operand, ops.get("$options", ""), what=f"'$regex' on '{path}'",
                                                   where=self.where, max_length=self.max_regex)
            elif op == "$options":
                if "$regex" not in ops:
                    self._fail(f"'$options' on '{path}' needs '$regex'.", "$options without $regex.")
                safe_regex.check_options(operand, self.where)
                out[op] = operand
            elif op == "$elemMatch":
                if not isinstance(operand, dict) or not operand:
                    self._fail(f"'$elemMatch' on '{path}' takes an object.", "$elemMatch needs an object.")
                if all(k.startswith("$") for k in operand):
                    inner, inner_negated = self._operators(path, operand, depth + 1)
                    if inner_negated:
                        self._fail("'$not' is not supported inside '$elemMatch' on values.", "$not in $elemMatch.")
                    out[op] = inner
                else:
                    out[op] = self.compile(operand, depth + 1)
            elif op == "$not":
                if not isinstance(operand, dict) or not operand or not all(k.startswith("$") for k in operand):
                    self._fail(f"'$not' on '{path}' takes an operator object such as {{\"$gt\": 5}}.",
                               "$not needs an operator object.")
                inner, inner_negated = self._operators(path, operand, depth + 1)
                if inner_negated:
                    self._fail("'$not' cannot be nested in '$not'.", "Nested $not.")
                negated.append(inner)
        return (out if out else _NOTHING), negated

    def _value(self, path: str, value, depth: int):
        if isinstance(value, str):
            if path in self.date_fields:
                parsed = parse_iso_datetime(value)
                if parsed is None:
                    self._fail(f"'{path}' is a date field; compare it with ISO 8601 strings.", f"Not a date: {value}")
                return parsed
            return value
        if isinstance(value, dict):
            check_document_keys(value, self.where, depth)
            return value
        if isinstance(value, list):
            if len(value) > MAX_LIST:
                self._fail(f"A list in the {self.where} has more than {MAX_LIST} items.", "List too long.")
            for item in value:
                if isinstance(item, dict):
                    check_document_keys(item, self.where, depth)
            return value
        return value


_NOTHING = object()


def compile_filter(query, date_fields=frozenset(), where: str = "filter", max_regex: int = MAX_REGEX) -> dict:
    if query is None:
        return {}
    return FilterCompiler(date_fields, where, max_regex).compile(query)


def check_document_keys(value, where: str = "document", depth: int = 0, max_depth: int = 32) -> None:
    """Keys of stored data: no '$' prefix, no dots, no NUL; bounded nesting."""
    if depth > max_depth:
        raise Invalid(f"The {where} is nested deeper than {max_depth} levels.", errors={where: ["Nested too deeply."]})
    if isinstance(value, dict):
        for key, item in value.items():
            if not key or key[0] == "$" or "." in key or "\x00" in key:
                raise Invalid(f"Invalid field name '{key}' in the {where}: names may not be empty, start with '$' "
                              f"or contain '.'.", errors={where: [f"Invalid field name: {key}"]})
            if isinstance(item, (dict, list)):
                check_document_keys(item, where, depth + 1, max_depth)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                check_document_keys(item, where, depth + 1, max_depth)


def equality_as_in(query):
    """Rewrite equality matches as `$in: [value]`, equivalent on MongoDB for JSON values.

    Aggregation `$match` on array membership is where MongoDB-compatible servers differ most; `$in` is
    matched the same way everywhere.
    """
    if isinstance(query, list):
        return [equality_as_in(item) for item in query]
    if not isinstance(query, dict):
        return query
    out = {}
    for key, value in query.items():
        if key in LOGICAL:
            out[key] = [equality_as_in(item) for item in value]
        elif key.startswith("$"):
            out[key] = value
        elif isinstance(value, dict) and value and all(k.startswith("$") for k in value):
            ops = dict(value)
            if "$eq" in ops and "$in" not in ops:
                ops["$in"] = [ops.pop("$eq")]
            if "$elemMatch" in ops and isinstance(ops["$elemMatch"], dict):
                ops["$elemMatch"] = equality_as_in(ops["$elemMatch"]) if not all(
                    k.startswith("$") for k in ops["$elemMatch"]) else ops["$elemMatch"]
            out[key] = ops
        else:
            out[key] = {"$in": [value]}
    return out


def and_filters(*filters) -> dict:
    """The AND of `filters` as one flat object wherever that means the same on MongoDB.

    Nested `$and`s are flattened, conditions on different fields become keys of one object, a condition that
    appears twice is kept once, and operator objects on the same field merge when they share no operator
    (`{"score": {"$lt": 9}}` and `{"score": {"$gte": 1}}` -> `{"score": {"$lt": 9, "$gte": 1}}`: on an array field
    each operator may still be met by a different element, exactly as with `$and`). Anything else (two plain
    values for one field, a plain value beside operators, the same operator twice, a second `$or`) stays in
    one `$and`. Rules, plugin constraints, keyset cursors and client filters are combined here, and the embedded
    database compiles only flat objects to SQL: one `$and` makes it evaluate every document in Python.
    """
    merged: dict = {}
    rest: list = []
    for condition in filters:
        if condition:
            for key, value in _conjuncts(condition):
                if key not in merged:
                    merged[key] = value
                elif _same_condition(merged[key], value):
                    continue
                elif key[0] != "$" and _operator_object(merged[key]) and _operator_object(value) \
                        and not merged[key].keys() & value.keys():
                    merged[key] = {**merged[key], **value}
                elif not any(_same_condition(value, kept.get(key, _NOTHING)) for kept in rest):
                    rest.append({key: value})
    if rest:
        merged["$and"] = rest
    return merged


def _conjuncts(condition: dict):
    for key, value in condition.items():
        if key == "$and":
            for item in value:
                yield from _conjuncts(item)
        else:
            yield key, value


def _operator_object(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(key.startswith("$") for key in value)


def _same_condition(a, b) -> bool:
    """Whether two conditions are the same, without Python's 1 == 1.0 == True."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_condition(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_condition(x, y) for x, y in zip(a, b))
    return a == b


def parse_sort(text: str | None) -> list[tuple[str, int]]:
    """'-score,name' -> [('score', -1), ('name', 1), ('_id', 1)]; _id always ends it (keyset tie-break)."""
    sort: list[tuple[str, int]] = []
    if text:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) > MAX_SORT_FIELDS:
            raise Invalid(f"Sort by at most {MAX_SORT_FIELDS} fields.", errors={"sort": ["Too many fields."]})
        seen = set()
        for part in parts:
            direction = 1
            if part.startswith("-"):
                direction, part = -1, part[1:]
            elif part.startswith("+"):
                part = part[1:]
            check_path(part, "sort")
            if part in seen:
                raise Invalid(f"'{part}' appears twice in sort.", errors={"sort": [f"Duplicate field: {part}"]})
            seen.add(part)
            sort.append((part, direction))
    if not any(field == "_id" for field, _ in sort):
        sort.append(("_id", 1))
    return sort


def parse_fields(text: str | None) -> list[str] | None:
    if not text:
        return None
    fields = [f.strip() for f in text.split(",") if f.strip()]
    if len(fields) > MAX_FIELDS:
        raise Invalid(f"Ask for at most {MAX_FIELDS} fields.", errors={"fields": ["Too many fields."]})
    for field in fields:
        if "." in field:
            raise Invalid(f"'fields' selects top-level fields only ('{field}').",
                          errors={"fields": [f"Not a top-level field: {field}"]})
        check_path(field, "fields")
    return fields


def parse_int(text: str | None, name: str, default: int, minimum: int, maximum: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise Invalid(f"'{name}' must be an integer.", errors={name: ["Not an integer."]}) from None
    if value < minimum or value > maximum:
        raise Invalid(f"'{name}' must be between {minimum} and {maximum}.",
                      errors={name: [f"Out of range {minimum}..{maximum}."]})
    return value


def parse_bool(text: str | None, name: str) -> bool:
    if text is None or text == "":
        return False
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise Invalid(f"'{name}' must be true or false.", errors={name: ["Not a boolean."]})


# --- keyset cursors -------------------------------------------------------------------------------------------

def _encode_value(value):
    if isinstance(value, datetime):
        return {"$d": value.astimezone(timezone.utc).isoformat()}
    return value


def _decode_value(value):
    if isinstance(value, dict):
        if set(value) == {"$d"} and isinstance(value["$d"], str):
            parsed = parse_iso_datetime(value["$d"])
            if parsed is not None:
                return parsed
        raise ValueError("bad cursor value")
    return value


class CursorCodec:
    """Opaque, HMAC-signed page cursors: a changed byte makes them invalid (400), never a different query."""

    def __init__(self, secret: str):
        self._key = hashlib.sha256(b"baas-cursor:" + secret.encode()).digest()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]

    def encode(self, scope: str, sort: list, values: list) -> str:
        payload = orjson.dumps([scope, [[f, d] for f, d in sort], [_encode_value(v) for v in values]])
        raw = self._sign(payload) + payload
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, cursor: str, scope: str, sort: list) -> list:
        bad = Invalid("The cursor is invalid or belongs to a different query; start again without it.",
                      errors={"cursor": ["Invalid cursor."]})
        if not isinstance(cursor, str) or len(cursor) > 4096:
            raise bad
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (ValueError, TypeError):
            raise bad from None
        signature, payload = raw[:16], raw[16:]
        if len(signature) != 16 or not hmac.compare_digest(signature, self._sign(payload)):
            raise bad
        try:
            cursor_scope, cursor_sort, values = orjson.loads(payload)
            if cursor_scope != scope or [tuple(s) for s in cursor_sort] != list(sort) or len(values) != len(sort):
                raise bad
            return [_decode_value(v) for v in values]
        except (ValueError, TypeError):
            raise bad from None


def path_value(doc: dict, path: str):
    value = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


# MongoDB sorts values of different types in this order (null and missing come first), while $gt/$lt only
# compare values of the same type; a cursor must add the types that sort after its value explicitly, or a page
# boundary on a number would skip every string. ObjectId is checked by name to keep bson out of this module.
_SORT_TYPE_ORDER = ("number", "string", "object", "array", "objectId", "bool", "date")


def _sort_type(value) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, datetime):
        return "date"
    if type(value).__name__ == "ObjectId":
        return "objectId"
    return None


def _other_types(field: str, value, after: bool) -> list[dict]:
    kind = _sort_type(value)
    if field == "_id" or kind is None or kind == "array":  # baas ids are always strings; arrays sort by an element
        return []
    rank = _SORT_TYPE_ORDER.index(kind)
    others = _SORT_TYPE_ORDER[rank + 1:] if after else _SORT_TYPE_ORDER[:rank]
    # One $type per clause: a list of types is valid MongoDB, but nx-27017 only takes one.
    return [{field: {"$type": other}} for other in others if other != "array"]


def keyset_branches(sort: list[tuple[str, int]], values: list) -> list[dict]:
    """Disjoint filters whose union is every document strictly after `values` in `sort` order (MongoDB sorts
    null and missing lowest), listed in that order: every document of a branch sorts before every document
    of a later one. So a page can be read branch by branch, as flat AND-only queries the embedded database
    serves from an index, and stop as soon as it is full; MongoDB gets their `$or` (`keyset_filter`).

    A document that first differs from the cursor at a later sort field sorts earlier, so the branches
    with the longest equal prefix come first.
    """
    branches = []
    for index in range(len(sort) - 1, -1, -1):
        field, direction = sort[index]
        equal = {f: values[i] for i, (f, _) in enumerate(sort[:index])}
        for after in _after(field, direction, values[index]):
            branches.append(and_filters(equal, after))
    return branches


def _after(field: str, direction: int, value) -> list[dict]:
    """The values of `field` strictly after `value` in `direction`, as filters in sort order."""
    if value is None:
        # Nothing sorts below null and missing in descending order. `$exists` is redundant on MongoDB, but
        # the embedded database lets `$ne: null` match missing fields.
        return [{field: {"$exists": True, "$ne": None}}] if direction == 1 else []
    first = {field: {"$gt" if direction == 1 else "$lt": value}}
    others = _other_types(field, value, after=direction == 1)
    if direction == -1 and field != "_id":  # baas ids are never null
        others.append({field: None})
    if not others:
        return [first]
    # The other types are rare: one query for all of them, sorted by the server.
    return [first, others[0] if len(others) == 1 else {"$or": others}]


def keyset_filter(sort: list[tuple[str, int]], values: list) -> dict:
    """The documents strictly after `values` in `sort` order, as one filter."""
    branches = keyset_branches(sort, values)
    if not branches:
        return {"_id": {"$in": []}}
    return branches[0] if len(branches) == 1 else {"$or": branches}
