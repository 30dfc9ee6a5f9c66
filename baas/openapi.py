"""The OpenAPI document as the contract: what every operation shares is added here, in one place.

Views declare what is theirs alone (their success response, their schemas, an `operationId`, and the rare
statuses only they answer, e.g. 409 or 412, via `extra_errors`). This apispec plugin adds, by the rules the
request path really follows (baas.http, baas.errors):

- security: none for the probes, the admin token under /admin/v1, the API key (plus an optional or required
  user token) under /v1; the document's global default is the API key;
- the error responses every API operation can answer, all with the one error schema: 400, 401, 403 (client
  API), 404 (a path names a resource), 413/415 (a request body), 422 (schema validation and plugin hooks),
  429 with Retry-After (client API), 503 with Retry-After (the database is away);
- a unique operationId for every operation, so SDK generators name their methods stably: the view's own,
  or one derived from the method and path; two operations with the same one stop the app at start.

`default` responses are not used: they would hide every status from generated clients and from fuzzers.
"""
from __future__ import annotations

import re
from http import HTTPStatus

from copy import deepcopy

from apispec import BasePlugin
from flask import request
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from flask_smorest.utils import deepupdate

from baas.files.schemas import FILE_ID, UPLOAD_ID
from baas.http import ADMIN_PREFIX, CLIENT_PREFIX
from baas.query import COLLECTION_NAME, DOCUMENT_ID
from baas.storage.mongo import PROJECT_ID_PATTERN

API_KEY = "apiKey"
USER_TOKEN = "userToken"
ADMIN_TOKEN = "adminToken"

SECURITY_SCHEMES = {
    API_KEY: {"type": "apiKey", "in": "header", "name": "X-API-Key",
              "description": "A project's client key (baas_ck_..., subject to access rules) or server key "
                             "(baas_sk_..., full access to the project)."},
    USER_TOKEN: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                 "description": "An end user's access token from /v1/auth (sent with the API key)."},
    ADMIN_TOKEN: {"type": "http", "scheme": "bearer",
                  "description": "A platform admin token (baas_at_...), for /admin/v1 only."},
}

# Security requirement lists (any one entry suffices).
PUBLIC: list = []
KEY_ONLY = [{API_KEY: []}]
USER_OPTIONAL = [{API_KEY: [], USER_TOKEN: []}, {API_KEY: []}]
USER_REQUIRED = [{API_KEY: [], USER_TOKEN: []}]
ADMIN = [{ADMIN_TOKEN: []}]

RETRY_AFTER = {"description": "Seconds to wait before trying again.", "schema": {"type": "integer", "minimum": 1}}
ETAG = {"description": "The document's revision, quoted; send it back in If-Match.", "schema": {"type": "string"}}
LOCATION = {"description": "URL of the created resource.", "schema": {"type": "string"}}
IF_MATCH = {"in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
            "description": "An ETag read before: the write happens only if the document still has it (412 if not)."}
IF_NONE_MATCH = {"in": "header", "name": "If-None-Match", "required": False,
                 "schema": {"type": "string"},
                 "description": "An ETag read before: 304 without a body while the document still has it."}

_DESCRIPTIONS = {
    400: "The request is not valid (the message says why).",
    401: "Missing or invalid API key, user token or admin token.",
    403: "The key or user may not do this (scope, server key or access rule).",
    404: "No such resource.",
    409: "Conflicts with the current state (already exists, unique index, changed meanwhile).",
    412: "If-Match does not match the current revision.",
    413: "The request body is larger than server.max_body_bytes.",
    415: "The request body is not JSON.",
    422: "The body or query does not match the schema, or a plugin refused the operation.",
    429: "Too many requests; Retry-After says when to try again.",
    503: "The database or file storage is unreachable; Retry-After says when to try again.",
}
_HEADERS = {429: {"Retry-After": RETRY_AFTER}, 503: {"Retry-After": RETRY_AFTER}}


# Path parameters the server checks by pattern, wherever they appear.
PATH_PARAMETERS = {
    "project_id": {"type": "string", "pattern": PROJECT_ID_PATTERN.pattern},
    "name": {"type": "string", "pattern": COLLECTION_NAME.pattern},
    "doc_id": {"type": "string", "pattern": DOCUMENT_ID.pattern},
    "file_id": {"type": "string", "pattern": FILE_ID.pattern},
    "upload_id": {"type": "string", "pattern": UPLOAD_ID.pattern},
}


def derived_operation_id(method: str, path: str) -> str:
    """A stable operationId from the method and path, for operations that name none themselves:
    `GET /v1/files/{file_id}/content` -> `getFilesByFileIdContent`, `/admin/v1/...` -> `admin...`."""
    words = []
    for segment in path.strip("/").split("/"):
        if segment in ("v1", "admin"):
            continue
        if segment.startswith("{"):
            words.append("By")
            segment = segment.strip("{}")
        words.extend(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", segment) if part)
    name = method.lower() + "".join(words)
    return "admin" + name[:1].upper() + name[1:] if path.startswith(ADMIN_PREFIX) else name


def response_name(status: int) -> str:
    """Component name of the error response for `status`, e.g. 'NotFound'."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # statuses of other protocols, e.g. tus's 460 Checksum Mismatch
        phrase = f"status {status}"
    return phrase.title().replace(" ", "").replace("-", "")


def extra_errors(*statuses: int) -> dict:
    """`@blp.doc(**extra_errors(409))`: statuses beyond the shared ones that one operation answers."""
    return {"responses": {str(status): response_name(status) for status in statuses}}


def describe(**doc):
    """What `@blp.doc(**doc)` adds to the document, without its wrapper function around the view.

    For the document views, the hot path: every wrapper costs a call and a current_app lookup per request.
    """
    def decorator(view):
        apidoc = deepcopy(getattr(view, "_apidoc", {}))
        apidoc["manual_doc"] = deepupdate(deepcopy(apidoc.get("manual_doc", {})), doc)
        view._apidoc = apidoc
        return view

    return decorator


# flask-smorest's alt_response wraps a view in a function whose only work per request is
# `current_app.ensure_sync(view)(...)`; its code object identifies those wrappers (the documentation they carry
# is read from the class at registration, not from the function Flask calls).
_ALT_RESPONSE_WRAPPER = Blueprint("probe", __name__).alt_response(200)(lambda: None).__code__


def _without_doc_wrappers(function):
    while getattr(function, "__code__", None) is _ALT_RESPONSE_WRAPPER and hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    return function


class DirectMethodView(MethodView):
    """A MethodView whose route calls the method's own function, for the hot views.

    Flask's as_view goes view() -> dispatch_request() -> getattr by method name -> ensure_sync twice, and each
    alt_response adds a wrapper that looks up current_app again: ~20 Python calls per request that decide
    nothing, as baas views are synchronous and the same for every request. The methods (with every decorator
    that does work, e.g. @blp.response or @blp.arguments) are looked up once; the class, and so the OpenAPI
    document flask-smorest builds from it, is unchanged.
    """

    init_every_request = False  # stateless: one instance serves every request

    @classmethod
    def as_view(cls, name, *class_args, **class_kwargs):
        if cls.decorators:
            raise TypeError(f"{cls.__name__}: a DirectMethodView takes no view decorators")
        instance = cls(*class_args, **class_kwargs)
        handlers = {method: _without_doc_wrappers(getattr(cls, method.lower())).__get__(instance, cls)
                    for method in cls.methods}
        if "GET" in handlers:
            handlers.setdefault("HEAD", handlers["GET"])  # as MethodView.dispatch_request falls back

        def view(**kwargs):
            return handlers[request.method](**kwargs)

        view.view_class = cls
        view.__name__ = name
        view.__doc__ = cls.__doc__
        view.__module__ = cls.__module__
        view.methods = cls.methods
        view.provide_automatic_options = cls.provide_automatic_options
        return view


class BaasApi(Api):
    DEFAULT_ERROR_RESPONSE_NAME = None  # every status is listed instead


class ContractPlugin(BasePlugin):
    def init_spec(self, spec) -> None:
        self.spec = spec
        self.operation_ids: dict[str, str] = {}
        for name, scheme in SECURITY_SCHEMES.items():
            spec.components.security_scheme(name, scheme)
        for status, description in _DESCRIPTIONS.items():
            response = {"description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            if status in _HEADERS:
                response["headers"] = _HEADERS[status]
            spec.components.response(response_name(status), response, lazy=True)

    def schema_helper(self, name, definition, **kwargs):
        schema = kwargs.get("schema")
        return dict(getattr(schema, "openapi_extra", None) or {})

    def path_helper(self, path=None, operations=None, parameters=None, **kwargs):
        for parameter in parameters or ():
            if parameter.get("in") == "path" and parameter.get("name") in PATH_PARAMETERS:
                parameter["schema"] = dict(PATH_PARAMETERS[parameter["name"]])

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        is_admin = path.startswith(ADMIN_PREFIX)
        is_client = path.startswith(CLIENT_PREFIX)
        for method, operation in operations.items():
            self._check_operation_id(method, path, operation)
            if not (is_admin or is_client):
                operation.setdefault("security", PUBLIC)
                continue
            operation.setdefault("security", ADMIN if is_admin else USER_OPTIONAL)
            statuses = {400, 401, 503}
            if is_client:
                statuses |= {403, 429}
            if "{" in path:
                statuses.add(404)
            if "requestBody" in operation:
                statuses |= {413, 415, 422}
            if method in ("post", "put", "patch", "delete") or any(
                    p.get("in") == "query" for p in operation.get("parameters", []) if isinstance(p, dict)):
                statuses.add(422)
            responses = operation.setdefault("responses", {})
            self._share_inline_errors(responses)
            for status in sorted(statuses):
                responses[str(status)] = response_name(status)

    def _share_inline_errors(self, responses: dict) -> None:
        """Error responses a view wrote inline (a description, maybe headers) become shared components with the one
        error schema, so every 4xx/5xx in the document has the same body whoever declared it. An inline response
        whose headers the shared one lacks (tus's 412 carries Tus-Version) gets a named variant that keeps them."""
        components = self.spec.components
        for status, response in list(responses.items()):
            if not isinstance(response, dict) or not str(status).isdigit() or int(status) < 400:
                continue
            name = response_name(int(status))
            headers = response.get("headers") or {}
            shared_headers = _HEADERS.get(int(status)) if int(status) in _DESCRIPTIONS else \
                (components.responses.get(name) or {}).get("headers")
            if headers and set(headers) != set(shared_headers or ()) and (
                    int(status) in _DESCRIPTIONS or name in components.responses):
                name += "With" + "".join(header.replace("-", "") for header in sorted(headers))
            if name not in components.responses and name not in components.responses_lazy:
                shared = {"description": response.get("description") or name,
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                if headers:
                    shared["headers"] = headers
                components.response(name, shared)
            responses[status] = name

    def _check_operation_id(self, method: str, path: str, operation: dict) -> None:
        where = f"{method.upper()} {path}"
        operation_id = operation.get("operationId")
        if not operation_id:
            operation_id = operation["operationId"] = derived_operation_id(method, path)
        other = self.operation_ids.setdefault(operation_id, where)
        if other != where:
            raise ValueError(f"operationId {operation_id!r} is used by {other} and {where}")
