"""The errors services raise, and the one JSON shape every error response has.

Services raise BaasError subclasses with plain messages; the HTTP layer turns them (and werkzeug's own
HTTP exceptions, and anything unexpected) into flask-smorest's shape:
{"code": 404, "status": "Not Found", "message": "...", "errors": {...}}.
"""
from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, current_app, g, jsonify
from pymongo.errors import ConnectionFailure
from werkzeug.exceptions import HTTPException

log = logging.getLogger("baas.errors")


class BaasError(Exception):
    status = 400

    def __init__(self, message: str, *, errors: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers or {}


class Invalid(BaasError):
    status = 400


class Unauthorized(BaasError):
    status = 401


class Forbidden(BaasError):
    status = 403


class NotFound(BaasError):
    status = 404


class MethodNotAllowed(BaasError):
    """405; give the resource's methods in an Allow header."""
    status = 405


class Conflict(BaasError):
    status = 409


class PreconditionFailed(BaasError):
    status = 412


class PayloadTooLarge(BaasError):
    status = 413


class UnsupportedMediaType(BaasError):
    status = 415


class Rejected(BaasError):
    """A plugin refused the operation: the client gets `status` (a 4xx, 422 by default) and the message."""
    status = 422

    def __init__(self, message: str, *, status: int = 422, **kwargs):
        super().__init__(message, **kwargs)
        if not isinstance(status, int) or not 400 <= status <= 499:
            raise ValueError("Rejected takes a 4xx status")
        self.status = status


class PluginFailed(BaasError):
    """A plugin crashed in a before-hook or a function: the operation stopped; details are in the log only."""
    status = 500

    def __init__(self, message: str = "A server-side plugin failed; nothing was changed. The request id in "
                                      "X-Request-ID identifies it in the logs.", **kwargs):
        super().__init__(message, **kwargs)


class TooManyRequests(BaasError):
    status = 429

    def __init__(self, message: str, *, retry_after: int, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = max(1, int(retry_after))
        self.headers["Retry-After"] = str(self.retry_after)


class ServiceUnavailable(BaasError):
    status = 503


DATABASE_UNAVAILABLE = "The database is unreachable right now; retry after the delay in Retry-After."


def error_response(status: int, message: str | None = None, errors: dict | None = None, headers: dict | None = None):
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # statuses from protocols on top of HTTP, e.g. tus's 460 Checksum Mismatch
        phrase = _EXTRA_PHRASES.get(status, "Error")
    body = {"code": status, "status": phrase}
    if message:
        body["message"] = message
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


_EXTRA_PHRASES = {460: "Checksum Mismatch"}

_DEFAULT_MESSAGES = {
    404: "No such resource.",
    405: "Method not allowed on this resource.",
    413: "Request body is too large.",
    415: "Unsupported content type; send application/json.",
}


def _handle_baas_error(exc: BaasError):
    return error_response(exc.status, exc.message, exc.errors, exc.headers)


def _handle_http_exception(exc: HTTPException):
    # flask-smorest/webargs put validation messages in exc.data["messages"].
    data = getattr(exc, "data", None) or {}
    errors = data.get("messages")
    message = data.get("message") or _DEFAULT_MESSAGES.get(exc.code) or exc.description
    if errors and not data.get("message"):
        message = "The request is not valid; see errors."
    headers = dict(data.get("headers") or {})
    if exc.code == 405 and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    return error_response(exc.code or 500, message, errors, headers)


def _handle_database_unreachable(exc: ConnectionFailure):
    # ConnectionFailure covers server selection timeouts, AutoReconnect and NetworkTimeout: the database is down,
    # restarting or cut off, none of which is the client's fault, and a retry soon may well succeed.
    log.warning("database unreachable in request %s: %s", g.get("request_id"), str(exc).split(", Timeout: ")[0])
    retry_after = current_app.extensions["baas"].config["mongodb"]["retry_after_seconds"]
    return error_response(503, DATABASE_UNAVAILABLE, headers={"Retry-After": str(retry_after)})


def _handle_unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return _handle_http_exception(exc)
    log.exception("unhandled error in request %s", g.get("request_id"))
    return error_response(500, "Internal server error; the request id in X-Request-ID identifies it in the logs.")


def init_app(app: Flask) -> None:
    app.register_error_handler(BaasError, _handle_baas_error)
    app.register_error_handler(ConnectionFailure, _handle_database_unreachable)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
