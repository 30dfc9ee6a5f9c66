"""_user_data skips check_document_keys for flat bodies: it must refuse exactly what the full check refuses."""
import pytest

from baas.documents.service import _UNSET, DocumentService, check_document_id
from baas.errors import BaasError, Invalid
from baas.query import check_document_keys


class _Principal:
    def __init__(self, is_server):
        self.is_server = is_server


def _reference(body, principal, allow_id):
    """_user_data as it was before the fast path: check_document_keys over every body."""
    if not isinstance(body, dict):
        raise Invalid("The document must be a JSON object.")
    doc_id = owner = _UNSET
    data = {}
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
    check_document_keys(data)
    return data, doc_id, owner


class _Dict(dict):
    pass


class _List(list):
    pass


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = {"a": value}
    return value


BODIES = [
    {},
    {"a": 1, "b": "x", "c": None, "d": True, "e": 1.5, "tags": ["x", 1, None]},
    {"$where": "1"},
    {"a": 1, "$set": {"b": 1}},
    {"a.b": 1},
    {"a": 1, "x.y": 2, "_id": "bad id!"},
    {"": 1},
    {"a\x00": 1},
    {"a": {"$gt": 1}},
    {"a": [{"$gt": 1}]},
    {"a": [[{"b.c": 1}]]},
    {"a": {"b.c": 1}, "d.e": 1},            # the first bad key in depth-first order is named
    {"d.e": 1, "a": {"b.c": 1}},
    {"a": 1, "_secret": 1},
    {"a.b": 1, "_secret": 1},               # the reserved-field error comes first, as before
    {"_id": "abc", "a": 1},
    {"_id": "", "a": 1},
    {"_id": {"$ne": None}},
    {"_id": 5},
    {"_owner": "u1", "a": 1},
    {"_owner": 5},
    {"_owner": None, "a.b": 1},
    {"_rev": "x"},
    {"a": float("nan")},                    # not a key check: the strict JSON parser refuses it, tested below
    {"a": _nested(32)},
    {"a": _nested(33)},
    {"a": _nested(40)},
    {"a": [_nested(32)]},
    {"a": _Dict({"$x": 1})},
    {"a": _List([{"$x": 1}])},
    {"a": ("x", {"$y": 1})},
    {"a": {"ok": [1, 2, {"fine": {"$bad": 1}}]}},
    [1, 2],
    "text",
    None,
]


def _outcome(fn, *args):
    try:
        data, doc_id, owner = fn(*args)
        return "ok", data, doc_id, owner
    except BaasError as exc:
        return type(exc).__name__, str(exc), getattr(exc, "errors", None)


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
@pytest.mark.parametrize("is_server", [False, True])
@pytest.mark.parametrize("allow_id", [False, True])
def test_same_outcome_as_full_check(body, is_server, allow_id):
    principal = _Principal(is_server)
    fast = _outcome(lambda b: DocumentService._user_data(None, b, principal, allow_id=allow_id), body)
    slow = _outcome(_reference, body, principal, allow_id)
    assert fast == slow


def test_key_injections_refused_through_api(project):
    for body in ({"$where": "1"}, {"a.b": 1}, {"a": {"$gt": 1}}, {"a": [{"b.c": 1}]}, {"_id": {"$ne": None}},
                 {"_x": 1}, {"a": _nested(40)}):
        response = project.server.post("/v1/collections/fastpath/documents", json=body)
        assert response.status_code == 400, body
    assert project.server.get("/v1/collections/fastpath/documents").get_json()["items"] == []


def test_non_finite_and_deep_refused_through_api(project):
    for text in (b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}', b'{"a": -Infinity}',
                 b'{"a": ' + b'[' * 70 + b']' * 70 + b'}'):
        response = project.server.post("/v1/collections/fastpath/documents", data=text,
                                       headers={"Content-Type": "application/json"})
        assert response.status_code == 400, text
    assert project.server.get("/v1/collections/fastpath/documents").get_json()["items"] == []
