"""The one JSON parser for everything a client sends: request bodies and JSON query parameters.

Strict where the JSON standard is loose and where the database would fail later with a 500:
no NaN/Infinity (nor a number like 1e400 that only a double's overflow would turn into one), no duplicate
keys (which value wins differs between parsers), no lone surrogates (they cannot be stored as UTF-8),
bounded nesting, and integers within MongoDB's int64 range (BSON has no larger integer; pymongo raises
OverflowError). Floats are IEEE doubles, as in BSON.

orjson does the parsing (it already refuses NaN, Infinity, overflowing numbers, lone surrogates and invalid
UTF-8); one walk over the result checks depth and integer range and counts keys. orjson keeps the last of
duplicate keys and turns integers beyond 64 bits into floats, so when the text could hold either (more key
endings '":' than keys, or a float at integer magnitude) the standard library parses it again, exactly, to
find them.
"""
from __future__ import annotations

import json
import re

import orjson

from baas.errors import Invalid

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
MAX_DEPTH = 64            # nesting of objects and arrays in one JSON value
# Every key of the text ends like this (a closing quote, blanks, a colon); inside a string only an escaped quote
# or a string starting with ':' can look the same, so counting these never finds fewer than the keys.
_KEY_END = re.compile(rb'"[ \t\r\n]*:')
NUMBER_RANGE = f"integers from {INT64_MIN} to {INT64_MAX} (64-bit, as MongoDB stores them) or finite doubles"


def fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def check_number(value, path: str, where: str = "body", location: str = "json") -> None:
    """Refuse a number MongoDB cannot store: an integer outside int64 or a non-finite float.

    The one range check for every input, and for results computed from inputs (`$inc`, `$mul`).
    """
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not fits_int64(value):
            raise Invalid(f"The number at '{path}' in the {where} is out of range: numbers are {NUMBER_RANGE}.",
                          errors={location: {path: ["Integer out of the 64-bit range."]}})
    elif isinstance(value, float) and value - value != 0.0:  # inf - inf and nan - nan are nan
        raise Invalid(f"The number at '{path}' in the {where} is not finite: numbers are {NUMBER_RANGE}.",
                      errors={location: {path: ["Not a finite number."]}})


def _join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _walk(value, where: str, location: str, max_depth: int) -> tuple[int, bool]:
    """Check depth and numbers; return (keys seen, whether a float could be an integer orjson widened)."""
    keys = 0
    widened = False
    stack = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict):
            items = node.items()
            keys += len(node)
        else:
            items = enumerate(node)
        if depth > max_depth:
            raise Invalid(f"The {where} is nested deeper than {max_depth} levels.",
                          errors={location: ["Nested too deeply."]})
        for key, item in items:
            kind = type(item)
            if kind is dict or kind is list:
                stack.append((item, _join(path, key), depth + 1))
            elif kind is int:
                if not INT64_MIN <= item <= INT64_MAX:
                    check_number(item, _join(path, key), where, location)
            elif kind is float and not -9.2e18 < item < 9.2e18:
                check_number(item, _join(path, key), where, location)  # NaN and infinities: only in values built in Python
                widened = True
    return keys, widened


def check_value(value, where: str = "body", location: str = "json", max_depth: int = MAX_DEPTH) -> None:
    """The checks of loads() on a value that did not come from text (a schema built by a plugin or the CLI)."""
    if type(value) is dict or type(value) is list:
        _walk(value, where, location, max_depth)
    else:
        check_number(value, where, where, location)


def _refuse_duplicates(where: str, location: str):
    def hook(pairs):
        result = dict(pairs)
        if len(result) != len(pairs):
            seen = set()
            for key, _ in pairs:
                if key in seen:
                    raise Invalid(f"The {where} has the key '{key}' twice in one object.",
                                  errors={location: {key: ["Duplicate key."]}})
                seen.add(key)
        return result
    return hook


def loads(data: bytes | str, where: str = "body", location: str = "json", max_depth: int = MAX_DEPTH):
    """Parse client JSON strictly; a 400 in the one error format names what is wrong.

    `where` names the input in messages ("body", "'filter' parameter"); `location` is the key of `errors`
    ("json" for bodies, as flask-smorest's validation errors have it; the parameter's name otherwise).
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        message = "Invalid JSON body." if location == "json" else "Not valid JSON."
        raise Invalid(f"The {where} is not valid JSON: {exc}", errors={location: [message]}) from None
    if type(value) is not dict and type(value) is not list:
        if type(value) is float and not -9.2e18 < value < 9.2e18:
            value = json.loads(data)
        check_number(value, where, where, location)
        return value
    keys, widened = _walk(value, where, location, max_depth)
    raw = data.encode() if isinstance(data, str) else data
    if widened or len(_KEY_END.findall(raw)) > keys:
        # Either a duplicate key or a string that holds '":' (rare), or an integer literal beyond 64 bits
        # that orjson made a float. The standard library keeps integers exact and shows every key.
        exact = json.loads(raw, object_pairs_hook=_refuse_duplicates(where, location))
        if widened:
            _walk(exact, where, location, max_depth)
    return value
