"""The Flask and response classes baas runs on."""
import inspect

from flask import Flask
from flask import Response as FlaskResponse
from flask.globals import request_ctx

from baas.util import RequestIds


class BaasResponse(FlaskResponse):
    """Flask's response, handing a body that is already in memory to the server as a plain list.

    werkzeug wraps every body in a ClosingIterator, and a WSGI server can only drain an iterator chunk by
    chunk: granian then calls back into Python for every chunk and for close(). A list of bytes with nothing
    to run on close is the same response, and granian writes it in one call. Streams and files keep the
    iterator.
    """

    def get_app_iter(self, environ):
        body = self.response
        if type(body) is list and not self._on_close and not self.direct_passthrough \
                and all(type(chunk) is bytes for chunk in body):
            status = self.status_code
            if environ["REQUEST_METHOD"] == "HEAD" or 100 <= status < 200 or status in (204, 304):
                return []
            return body
        return super().get_app_iter(environ)


class BaasFlask(Flask):
    """Flask, minus work it would repeat on every request: coroutine checks of hooks and views (every baas view
    is synchronous) and the lookup of what body a view takes (raw, or JSON and whether it is required)."""

    response_class = BaasResponse

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync_checked: dict = {}
        self._body_rules_of_views: dict = {}
        self.request_ids = RequestIds()
        self._hooks_of_endpoints: dict = {}

    def ensure_sync(self, func):
        key = getattr(func, "__func__", func)  # bound methods are new objects on every request
        is_sync = self._sync_checked.get(key)
        if is_sync is None:
            is_sync = self._sync_checked[key] = not inspect.iscoroutinefunction(func)
        return func if is_sync else super().ensure_sync(func)

    def _hooks(self, request):
        """(url value preprocessors, before-request and after-request functions, in Flask's order) for the
        request's endpoint, sync-checked once. Flask refuses new hooks once it has served a request, so they can
        be looked up once per endpoint instead of walking the blueprint names for every request."""
        rule = request.url_rule
        endpoint = rule.endpoint if rule is not None else None
        hooks = self._hooks_of_endpoints.get(endpoint)
        if hooks is None:
            blueprints = request.blueprints
            names = (None, *reversed(blueprints))
            preprocessors = tuple(f for n in names for f in self.url_value_preprocessors.get(n, ()))
            before = tuple(self.ensure_sync(f) for n in names for f in self.before_request_funcs.get(n, ()))
            after = tuple(self.ensure_sync(f) for n in (*blueprints, None)
                          for f in reversed(self.after_request_funcs.get(n, ())))
            hooks = self._hooks_of_endpoints[endpoint] = (preprocessors, before, after)
        return hooks

    def preprocess_request(self):
        request = request_ctx.request
        preprocessors, before, _ = self._hooks(request)
        for url_func in preprocessors:
            url_func(request.endpoint, request.view_args)
        for before_func in before:
            rv = before_func()
            if rv is not None:
                return rv
        return None

    def process_response(self, response):
        ctx = request_ctx._get_current_object()
        for func in ctx._after_request_functions:  # after_this_request, per request
            response = self.ensure_sync(func)(response)
        for func in self._hooks(ctx.request)[2]:
            response = func(response)
        if not self.session_interface.is_null_session(ctx._session):
            self.session_interface.save_session(self, ctx._session, response)
        return response

    def body_rules(self, endpoint: str, method: str) -> tuple[bool, bool]:
        """(whether the view of `endpoint` for `method` is marked with baas.http.raw_body (file uploads), whether
        it declares a required JSON request body in its OpenAPI operation (flask-smorest's @arguments, or a
        requestBody given with @doc)), looked up once per view."""
        key = (endpoint, method)
        rules = self._body_rules_of_views.get(key)
        if rules is None:
            view = self.view_functions.get(endpoint)
            view_class = getattr(view, "view_class", None)
            if view_class is not None:
                view = getattr(view_class, method.lower(), None) or view_class
            apidoc = getattr(view, "_apidoc", None) or {}
            parameters = (apidoc.get("arguments") or {}).get("parameters") or []
            required = any(p.get("in") == "json" and p.get("required", True) for p in parameters
                           if isinstance(p, dict))
            manual = (apidoc.get("manual_doc") or {}).get("requestBody")
            if manual is not None:
                required = required or bool(manual.get("required", True))
            rules = self._body_rules_of_views[key] = (bool(getattr(view, "accepts_raw_body", False)), required)
        return rules
