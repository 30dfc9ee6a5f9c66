"""The Flask and response classes baas runs on."""
import inspect

from flask import Flask
from flask import Response as FlaskResponse

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
    is synchronous) and the lookup of whether a view takes raw bodies."""

    response_class = BaasResponse

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync_checked: dict = {}
        self._raw_body_views: dict = {}
        self.request_ids = RequestIds()

    def ensure_sync(self, func):
        key = getattr(func, "__func__", func)  # bound methods are new objects on every request
        is_sync = self._sync_checked.get(key)
        if is_sync is None:
            is_sync = self._sync_checked[key] = not inspect.iscoroutinefunction(func)
        return func if is_sync else super().ensure_sync(func)

    def body_limit(self, url_rule, method: str, default: int, config: dict) -> int:
        """The largest body the view of `url_rule` takes (see baas.http.body_limit); only asked for big bodies."""
        if url_rule is None:
            return default
        view = self._view_method(url_rule.endpoint, method)
        key = getattr(view, "body_limit_key", None)
        if key is None:
            return default
        from baas.config import get

        return get(config, key)

    def _view_method(self, endpoint: str, method: str):
        view = self.view_functions.get(endpoint)
        view_class = getattr(view, "view_class", None)
        if view_class is not None:
            view = getattr(view_class, method.lower(), None) or view_class
        return view

    def accepts_raw_body(self, endpoint: str, method: str) -> bool:
        """Whether the view of `endpoint` for `method` is marked with baas.http.raw_body (file uploads)."""
        key = (endpoint, method)
        accepts = self._raw_body_views.get(key)
        if accepts is None:
            view = self.view_functions.get(endpoint)
            view_class = getattr(view, "view_class", None)
            if view_class is not None:
                view = getattr(view_class, method.lower(), None) or view_class
            accepts = self._raw_body_views[key] = bool(getattr(view, "accepts_raw_body", False))
        return accepts
