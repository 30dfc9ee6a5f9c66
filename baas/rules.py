"""Access rules: per collection and action, who may do what, compiled into the filter of every query.

A rule is `public`, `authenticated`, `owner`, `role:<name>`, `none` (server keys only), a filter template in
query syntax whose string values may be principal variables (`{"members": "@user.id"}`,
`{"team": {"$in": "@user.roles"}}`), or a list of these meaning "any of". Server keys bypass rules.

`evaluate()` turns a rule and a principal into an Access: denied outright, or allowed on the documents
matching a MongoDB filter (an empty filter means every document). Because reads AND that filter into the
query, list, count, aggregate and expand can never return, count or reveal a document the caller may not read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from baas import safe_regex
from baas.errors import Invalid
from baas.query import compile_filter

ACTIONS = ("list", "read", "create", "update", "delete", "aggregate")
KEYWORDS = ("public", "authenticated", "owner", "none")
VARIABLES = ("@user.id", "@user.roles", "@project.id")
ROLE = re.compile(r"^role:([A-Za-z0-9_.:-]{1,64})$")
MAX_RULE_ALTERNATIVES = 10

SECURE_DEFAULT = {action: "none" for action in ACTIONS}
OPEN_DEFAULT = {"list": "authenticated", "read": "authenticated", "aggregate": "authenticated",
                "create": "authenticated", "update": "owner", "delete": "owner"}


def default_rules(settings: dict | None) -> dict:
    """Rules a collection gets when it is first written without a definition."""
    return dict(OPEN_DEFAULT if (settings or {}).get("open_new_collections") else SECURE_DEFAULT)


@dataclass(frozen=True, slots=True)
class Access:
    allowed: bool
    filter: dict | None = None   # None: every document; otherwise only documents matching it
    reason: str = ""

    @property
    def unconditional(self) -> bool:
        return self.allowed and not self.filter


ALLOW_ALL = Access(True, None)


def _check_template_values(value, action: str):
    if isinstance(value, str):
        if value.startswith("@") and value not in VARIABLES:
            raise Invalid(f"Unknown variable '{value}' in the '{action}' rule; known: {', '.join(VARIABLES)}.",
                          errors={"rules": {action: [f"Unknown variable: {value}"]}})
    elif isinstance(value, dict):
        for item in value.values():
            _check_template_values(item, action)
    elif isinstance(value, list):
        for item in value:
            _check_template_values(item, action)


def check_rule(rule, action: str):
    """Validate one rule as an admin wrote it; return it unchanged."""
    if isinstance(rule, str):
        if rule in KEYWORDS or ROLE.match(rule):
            return rule
        raise Invalid(f"Unknown rule '{rule}' for '{action}': use public, authenticated, owner, role:<name>, none, "
                      f"a filter template or a list of these.", errors={"rules": {action: [f"Unknown rule: {rule}"]}})
    if isinstance(rule, dict):
        # Variables stand in for values; check the template with placeholders where lists are expected.
        _check_template_values(rule, action)
        compile_filter(_placeholders(rule), where=f"rules.{action}")
        return rule
    if isinstance(rule, list) and 0 < len(rule) <= MAX_RULE_ALTERNATIVES:
        for item in rule:
            if isinstance(item, list):
                raise Invalid(f"Rule lists for '{action}' cannot be nested.",
                              errors={"rules": {action: ["Nested list."]}})
            check_rule(item, action)
        return rule
    raise Invalid(f"The rule for '{action}' must be a string, a filter object or a list of at most "
                  f"{MAX_RULE_ALTERNATIVES} rules.", errors={"rules": {action: ["Invalid rule."]}})


def check_rules(rules, base: dict | None = None) -> dict:
    """Validate a rules object; actions it does not name keep their value from `base` (or `none`)."""
    if rules is None:
        return dict(base or SECURE_DEFAULT)
    if not isinstance(rules, dict):
        raise Invalid("'rules' must be an object mapping actions to rules.", errors={"rules": ["Must be an object."]})
    unknown = sorted(set(rules) - set(ACTIONS))
    if unknown:
        raise Invalid(f"Unknown action(s) in rules: {', '.join(unknown)}; actions are {', '.join(ACTIONS)}.",
                      errors={"rules": {a: ["Unknown action."] for a in unknown}})
    checked = dict(base or SECURE_DEFAULT)
    for action, rule in rules.items():
        checked[action] = check_rule(rule, action)
    return checked


class _Variable:
    """A principal variable inside a prepared template; replaced by its value per request."""
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _ListVariable(list):
    """`@user.roles` where the filter expects a list (`$in`, `$all`)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name


def _placeholders(template):
    if isinstance(template, str):
        if template in VARIABLES:
            return _ListVariable(template) if template == "@user.roles" else _Variable(template)
        return template
    if isinstance(template, dict):
        return {key: _placeholders(value) for key, value in template.items()}
    if isinstance(template, list):
        return [_placeholders(item) for item in template]
    return template


def prepare_rule(rule, date_fields=frozenset()):
    """A checked rule made ready for evaluate(): templates compiled once, with variables left as placeholders."""
    if isinstance(rule, list):
        return [prepare_rule(item, date_fields) for item in rule]
    if isinstance(rule, dict):
        return _Template(compile_filter(_placeholders(rule), date_fields, where="rules"))
    return rule


class _Template:
    __slots__ = ("filter", "uses_user")

    def __init__(self, compiled: dict):
        self.filter = compiled
        self.uses_user = _uses_user(compiled)


def _substitute(template, variables: dict):
    if isinstance(template, (_Variable, _ListVariable)):
        return variables[template.name]
    if isinstance(template, dict):
        return {key: _substitute(value, variables) for key, value in template.items()}
    if isinstance(template, list):
        return [_substitute(item, variables) for item in template]
    return template


def _uses_user(template) -> bool:
    if isinstance(template, (_Variable, _ListVariable)):
        return template.name.startswith("@user.")
    if isinstance(template, dict):
        return any(_uses_user(v) for v in template.values())
    if isinstance(template, list):
        return any(_uses_user(v) for v in template)
    return False


def evaluate(rule, principal, action: str) -> Access:
    """What `principal` may do under a prepared `rule`; server keys (and the admin) may do everything."""
    if principal.is_server:
        return ALLOW_ALL
    if isinstance(rule, list):
        filters = []
        for item in rule:
            access = evaluate(item, principal, action)
            if access.unconditional:
                return access
            if access.allowed:
                filters.append(access.filter)
        if not filters:
            return Access(False, reason=f"'{action}' is not allowed for this caller in this collection.")
        return Access(True, filters[0] if len(filters) == 1 else {"$or": filters})
    user = principal.user
    if rule == "public":
        return ALLOW_ALL
    if rule == "authenticated":
        if user is None:
            return Access(False, reason=f"'{action}' needs a signed-in user.")
        return ALLOW_ALL
    if rule == "owner":
        if user is None:
            return Access(False, reason=f"'{action}' needs a signed-in user.")
        return Access(True, {"_owner": user.id})
    if rule == "none" or rule is None:
        return Access(False, reason=f"'{action}' in this collection needs a server key.")
    if isinstance(rule, str):
        match = ROLE.match(rule)
        if match and user is not None and match.group(1) in user.roles:
            return ALLOW_ALL
        return Access(False, reason=f"'{action}' needs the role '{match.group(1) if match else rule}'.")
    if isinstance(rule, _Template):
        if user is None and rule.uses_user:
            return Access(False, reason=f"'{action}' needs a signed-in user.")
        variables = {"@user.id": user.id if user else None, "@user.roles": list(user.roles) if user else [],
                     "@project.id": principal.project_id}
        return Access(True, _substitute(rule.filter, variables))
    return Access(False, reason=f"'{action}' is not allowed.")


# --- matching a single document in Python (create, and the result of an update) -------------------------------

def _values_at(doc, parts: list[str]):
    """Every value a path reaches, walking into arrays like MongoDB does; empty when the path is missing."""
    if not parts:
        return [doc]
    head, rest = parts[0], parts[1:]
    if isinstance(doc, dict):
        if head not in doc:
            return []
        return _values_at(doc[head], rest)
    if isinstance(doc, list):
        out = []
        if head.isdigit() and int(head) < len(doc):
            out.extend(_values_at(doc[int(head)], rest))
        for item in doc:
            if isinstance(item, dict):
                out.extend(_values_at(item, parts))
        return out
    return []


def _candidates(values: list) -> list:
    """The values a comparison sees: each value, and each element of array values."""
    out = []
    for value in values:
        out.append(value)
        if isinstance(value, list):
            out.extend(value)
    return out


def _comparable(a, b) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    return type(a) is type(b) and a is not None


def _equals(values: list, expected) -> bool:
    if expected is None and not values:
        return True
    return any(same_value(c, expected) for c in _candidates(values))


def same_value(a, b) -> bool:
    """Equality as MongoDB sees JSON values: 1 == 1.0, but true is not 1, and embedded documents compare
    field by field in order (BSON keeps key order), at every depth."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_value(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return a == b


def _compare(values: list, op: str, operand) -> bool:
    for candidate in _candidates(values):
        if not _comparable(candidate, operand):
            continue
        try:
            if op == "$gt" and candidate > operand or op == "$gte" and candidate >= operand \
                    or op == "$lt" and candidate < operand or op == "$lte" and candidate <= operand:
                return True
        except TypeError:
            continue
    return False


def _field_matches(doc, path: str, condition) -> bool:
    values = _values_at(doc, path.split("."))
    if not (isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)):
        return _equals(values, condition)
    for op, operand in condition.items():
        if op == "$eq":
            ok = _equals(values, operand)
        elif op == "$ne":
            ok = not _equals(values, operand)
        elif op in ("$gt", "$gte", "$lt", "$lte"):
            ok = _compare(values, op, operand)
        elif op == "$in":
            ok = any(_equals(values, item) for item in operand)
        elif op == "$nin":
            ok = not any(_equals(values, item) for item in operand)
        elif op == "$exists":
            ok = bool(values) == operand
        elif op == "$all":
            ok = bool(operand) and all(_equals(values, item) for item in operand)
        elif op == "$size":
            ok = any(isinstance(v, list) and len(v) == operand for v in values)
        elif op == "$regex":
            pattern = re.compile(operand, safe_regex.check_options(condition.get("$options", "")))
            ok = any(isinstance(c, str) and pattern.search(c) for c in _candidates(values))
        elif op == "$options":
            continue
        elif op == "$elemMatch":
            arrays = [v for v in values if isinstance(v, list)]
            if all(k.startswith("$") for k in operand):
                ok = any(_field_matches({"v": item}, "v", operand) for array in arrays for item in array)
            else:
                ok = any(isinstance(item, dict) and matches(operand, item) for array in arrays for item in array)
        else:
            return False
        if not ok:
            return False
    return True


def matches(query: dict | None, doc: dict) -> bool:
    """Whether `doc` matches a compiled (validated) filter, with MongoDB's semantics for JSON values."""
    if not query:
        return True
    for key, condition in query.items():
        if key == "$and":
            if not all(matches(q, doc) for q in condition):
                return False
        elif key == "$or":
            if not any(matches(q, doc) for q in condition):
                return False
        elif key == "$nor":
            if any(matches(q, doc) for q in condition):
                return False
        elif not _field_matches(doc, key, condition):
            return False
    return True
