"""Per-request observability: time every request, count it by route template, write one access log line.

The log line names the route template (`/v1/collections/<name>/documents/<doc_id>`), never the path or query
string, and no header or body: paths and queries can carry tokens (verification links), headers carry keys.
"""
from __future__ import annotations

import functools
import logging
import re
import time

from flask import Flask, current_app, g, request

from baas.observability.logs import ACCESS_LOGGER, AccessLog

_STARTED = "baas.started"
UNMATCHED_ROUTE = "<unmatched>"  # one label for every unknown path, so scanners cannot grow the series
# HTTP lets a client send any token as its method; made-up ones share one label, as unknown paths do.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
OTHER_METHOD = "OTHER"


_CONVERTER = re.compile(r"<[^:<>]+:([^<>]+)>")


@functools.lru_cache(maxsize=1024)  # one entry per route of the app
def route_template(rule: str) -> str:
    """`/v1/files/<string(length=24):file_id>` -> `/v1/files/<file_id>`: converters are routing detail."""
    return _CONVERTER.sub(r"<\1>", rule)


def _start_timer():
    request._get_current_object().environ[_STARTED] = time.perf_counter()


def _finish(response):
    # Runs after every request: each context proxy is resolved once, the rest are plain reads.
    req = request._get_current_object()
    environ = req.environ
    started = environ.get(_STARTED)
    if started is None:
        return response
    seconds = time.perf_counter() - started
    rule = req.url_rule
    route = route_template(rule.rule) if rule is not None else UNMATCHED_ROUTE
    method = environ.get("REQUEST_METHOD", "")
    if method not in KNOWN_METHODS:
        method = OTHER_METHOD
    status = response.status_code
    extensions = current_app._get_current_object().extensions
    extensions["baas"].metrics.observe_request(method, route, status, seconds)
    log = extensions["baas.access_log"]
    if log.enabled():
        g_ = g._get_current_object()
        principal = getattr(g_, "principal", None)
        project = user = None
        if principal is not None:
            project = principal.project.id if principal.project is not None else None
            user = principal.user.id if getattr(principal, "user", None) is not None else None
        milliseconds = seconds * 1000
        log.write(f"{method} {route} {status} {milliseconds:.1f}ms", {
            "request_id": getattr(g_, "request_id", None),
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(milliseconds, 2),
            "project": project,
            "user_id": user,
            "admin": bool(principal is not None and getattr(principal, "admin", False)),
        })
    return response


def init_app(app: Flask) -> None:
    app.extensions["baas.access_log"] = AccessLog(logging.getLogger(ACCESS_LOGGER))
    app.before_request(_start_timer)
    app.after_request(_finish)
