"""The Flask class baas runs on."""
import inspect

from flask import Flask


class BaasFlask(Flask):
    """Flask, minus a coroutine check per hook and view on every request (every baas view is synchronous)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync_checked: dict = {}

    def ensure_sync(self, func):
        key = getattr(func, "__func__", func)  # bound methods are new objects on every request
        is_sync = self._sync_checked.get(key)
        if is_sync is None:
            is_sync = self._sync_checked[key] = not inspect.iscoroutinefunction(func)
        return func if is_sync else super().ensure_sync(func)
