"""Request plumbing shared by every API: request ids, body and content-type rules, CORS, the principal."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone

import orjson
from bson.tz_util import utc as BSON_UTC
from flask import Flask, current_app, g, make_response, request
from flask import g as _g_proxy
from flask import request as _request_proxy
from flask.json.provider import JSONProvider
from flask.sessions import SessionInterface
from werkzeug.wsgi import get_content_length

from baas import strictjson
from baas.context import services
from baas.errors import Invalid, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from baas.principal import Principal
from baas.util import iso_utc

CLIENT_PREFIX = "/v1/"
ADMIN_PREFIX = "/admin/v1/"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ALLOWED_HEADERS = ("Authorization, Content-Type, If-Match, If-None-Match, X-API-Key, X-Request-ID, "
                   # file downloads and uploads (tus)
                   "Range, If-Range, If-Modified-Since, X-File-Name, Tus-Resumable, Upload-Length, Upload-Offset, "
                   "Upload-Metadata, Upload-Checksum, Upload-Concat, X-HTTP-Method-Override")
EXPOSED_HEADERS = ("ETag, Location, Retry-After, X-Request-ID, Content-Disposition, Content-Range, Content-Length, "
                   "Accept-Ranges, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, "
                   "Upload-Offset, Upload-Length, Upload-Expires, Baas-File-Id")
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


class OrjsonProvider(JSONProvider):
    """orjson is several times faster than the standard library on the document paths."""

    _options = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

    def dumps(self, obj, **kwargs) -> str:
        return orjson.dumps(obj, default=json_default, option=self._options).decode()

    def loads(self, s, **kwargs):
        return strictjson.loads(s)

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(orjson.dumps(obj, default=json_default, option=self._options),
                                        mimetype="application/json")


def json_default(value):
    """What orjson cannot serialize itself, for every JSON response; datetimes come here too (passthrough) so that
    every date has the one documented format (util.iso_utc), which orjson's own would not give."""
    if isinstance(value, datetime):
        zone = value.tzinfo
        if zone is BSON_UTC or zone is timezone.utc:
            # What the database returns: iso_utc's format the fast way, as this runs for every date of every page.
            return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)  # ObjectId, Decimal128 and other BSON values


def json_body():
    """The request's JSON body, parsed once and strictly before the view ran (None when there is none)."""
    return g._get_current_object().__dict__.get("json_body")  # what g.get does, past one proxy lookup


def raw_body(view):
    """Mark a view that accepts bodies other than JSON (file uploads)."""
    view.accepts_raw_body = True
    return view


def bearer_token(environ) -> str | None:
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def resolve_principal(environ=None, svc=None) -> Principal:
    # Runs on every API request: reads the WSGI environ directly rather than through the header proxies.
    if environ is None:
        environ = request.environ
    if svc is None:
        svc = current_app.extensions["baas"]
    if environ.get("PATH_INFO", "").startswith(ADMIN_PREFIX):
        token = bearer_token(environ)
        if token is None and environ.get("HTTP_AUTHORIZATION"):
            raise Unauthorized("The admin API needs 'Authorization: Bearer <admin token>'.")
        svc.admin.verify(token)
        return Principal(project=None, admin=True)
    api_key = environ.get("HTTP_X_API_KEY")
    if not api_key:
        raise Unauthorized("Send your project's API key in the X-API-Key header.")
    project, key = svc.keys.authenticate(api_key)
    if svc.limiter is not None:
        svc.limiter.hit_api_key(project.id, key.id)
    user = None
    token = bearer_token(environ)
    if token is not None:
        if svc.auth is None:
            raise Unauthorized("User tokens are not accepted by this server.")
        user = svc.auth.resolve_user(project, token)
    elif environ.get("HTTP_AUTHORIZATION"):
        raise Unauthorized("The Authorization header must be 'Bearer <access token>'.")
    return Principal(project=project, key=key, user=user)


def _cors_origin_allowed(origin: str) -> bool:
    svc = services()
    allowed = svc.config["cors"]["allowed_origins"]
    if "*" in allowed or origin in allowed:
        return True
    principal = g.get("principal")
    if principal is not None and principal.project is not None:
        origins = principal.project.cors_origins
        return "*" in origins or origin in origins
    if request.method == "OPTIONS":
        # A preflight carries no API key, so it cannot name its project; allow origins some project allows.
        # The actual request is then checked against its own project's list.
        origins = svc.projects.all_cors_origins()
        return "*" in origins or origin in origins
    return False


def _before_request():
    # Every request passes here: one lookup per context proxy, then plain environ reads.
    request = _request_proxy._get_current_object()
    g = _g_proxy._get_current_object()
    app = current_app._get_current_object()
    svc = app.extensions["baas"]
    environ = request.environ
    incoming = environ.get("HTTP_X_REQUEST_ID")
    g.request_id = incoming if incoming and _REQUEST_ID.match(incoming) else app.request_ids.next()
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD")
    is_client = path.startswith(CLIENT_PREFIX)
    if method == "OPTIONS" and is_client and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
        preflight = make_response("", 204)
        origin = request.headers.get("Origin")
        if origin and _cors_origin_allowed(origin):
            preflight.headers["Access-Control-Allow-Origin"] = origin
            preflight.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            preflight.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            preflight.headers["Access-Control-Max-Age"] = "600"
        preflight.headers["Vary"] = "Origin"
        return preflight
    limit = svc.config["server"]["max_body_bytes"]
    content_length = get_content_length(environ)
    url_rule = request.url_rule
    # (accepts a raw body, requires a JSON body) of the view, looked up once for both questions.
    body_rules = app.body_rules(url_rule.endpoint, method) if url_rule is not None and method in _BODY_METHODS \
        else None
    # Views that stream bodies (file uploads) enforce their own, larger limits as they read.
    raw = body_rules is not None and body_rules[0]
    if content_length is not None and content_length > limit and not raw:
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    # Unknown routes and wrong methods answer 404/405 whatever the body is.
    json_request = body_rules is not None and not raw
    data = b""
    if json_request and (content_length or environ.get("HTTP_TRANSFER_ENCODING")):
        content_type = environ.get("CONTENT_TYPE", "")
        # The usual header is recognised as is; anything else is parsed as werkzeug parses it.
        if content_type != "application/json" and not content_type.startswith("application/json;") \
                and request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
            raise UnsupportedMediaType("Send the request body as JSON with 'Content-Type: application/json'.")
        data = request.get_data(cache=True)
        # werkzeug ends a chunked body (no Content-Length) silently at the limit, so the view would see it cut
        # short; refuse it whole instead.
        if content_length is None and len(data) >= limit:
            raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    if url_rule is not None and (is_client or path.startswith(ADMIN_PREFIX)):
        g.principal = resolve_principal(environ, svc)
    if json_request:
        _parse_json_body(data, method, body_rules[1], g)


def _parse_json_body(data: bytes, method: str, required: bool, g) -> None:
    """The one place a JSON body is parsed: strictly (baas.strictjson), for every route, before its view.

    Views read the result with json_body(); flask-smorest views parse the same bytes again with webargs,
    which can no longer differ, as only strict JSON gets this far.
    """
    if not data.strip():
        if required:
            raise Invalid("This request needs a JSON object as its body (Content-Type: application/json).",
                          errors={"json": ["Missing body."]})
        return
    body = g.json_body = strictjson.loads(data)
    if method == "PATCH" and body == {}:
        raise Invalid("A PATCH must change something: send a JSON object with at least one field.",
                      errors={"json": ["Empty PATCH."]})


def _after_request(response):
    environ = _request_proxy._get_current_object().environ
    headers = response.headers
    # Nothing but this hook sets X-Request-ID, so it is appended rather than searched for and replaced.
    headers.add("X-Request-ID", _g_proxy.get("request_id") or current_app.request_ids.next())
    origin = environ.get("HTTP_ORIGIN")
    if origin and environ.get("PATH_INFO", "").startswith(CLIENT_PREFIX) \
            and "Access-Control-Allow-Origin" not in headers:
        headers.add("Vary", "Origin")
        try:
            allowed = _cors_origin_allowed(origin)
        except Exception:  # never let CORS bookkeeping turn a response into a 500
            allowed = False
        if allowed:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if response.status_code in (204, 304):
        # No body, so no type: werkzeug gives every response text/html by default.
        headers.pop("Content-Type", None)
    # A plain scan: `in` and get() look the name up by raising and catching a KeyError when it is absent, as
    # it is on almost every response; add() appends where setdefault() would rescan the list to set.
    for name, _ in headers:
        if name.lower() == "x-content-type-options":
            break
    else:
        headers.add("X-Content-Type-Options", "nosniff")
    return response


class _NoSessions(SessionInterface):
    """The API is stateless (keys and bearer tokens); skipping cookie sessions saves work on every request."""

    def open_session(self, app, request):
        return None

    def save_session(self, app, session, response):
        return None


def init_app(app: Flask) -> None:
    app.session_interface = _NoSessions()
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = app.extensions["baas"].config["server"]["max_body_bytes"]
    app.before_request(_before_request)
    app.after_request(_after_request)
