"""PluginContext: the public API that hooks, functions and jobs get as `ctx`. Everything else in baas is private."""
from __future__ import annotations

import copy
import json
import logging
from datetime import datetime, timezone

from baas.principal import KeyInfo, Principal

__all__ = ["PluginContext"]


class _NoHooks:
    """Hook manager stand-in for document access that skips every plugin's hooks."""

    @staticmethod
    def before(hook_name, **kwargs):
        return []

    @staticmethod
    def after(hook_name, **kwargs):
        return None

    @staticmethod
    def has(hook_name, project_id):
        return False


class Documents:
    """Server-side document access for one project, with full (server key) rights.

    Writes run the other plugins' hooks like any API write, unless made through `ctx.documents.without_hooks()`.
    """

    def __init__(self, service, principal: Principal):
        self._service = service
        self._principal = principal

    def without_hooks(self) -> "Documents":
        quiet = copy.copy(self._service)
        quiet.hooks = _NoHooks()
        return Documents(quiet, self._principal)

    def get(self, collection: str, doc_id: str) -> dict:
        return self._service.get(self._principal, collection, doc_id)

    def find(self, collection: str, filter: dict | None = None, sort: str | None = None, limit: int = 100,
             cursor: str | None = None) -> dict:
        """One page: {"items": [...], "next_cursor": ...}; `filter` uses the client filter syntax."""
        from baas.documents.service import FindParams

        params = FindParams(filter=json.dumps(filter, default=_iso) if filter else None, sort=sort,
                            limit=str(limit), cursor=cursor)
        return self._service.find(self._principal, collection, params)

    def create(self, collection: str, document: dict) -> dict:
        return self._service.create(self._principal, collection, document)

    def replace(self, collection: str, doc_id: str, document: dict) -> dict:
        return self._service.replace(self._principal, collection, doc_id, document)

    def update(self, collection: str, doc_id: str, changes: dict) -> dict:
        return self._service.update(self._principal, collection, doc_id, changes)

    def delete(self, collection: str, doc_id: str) -> None:
        self._service.delete(self._principal, collection, doc_id)


def _iso(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON")


class PluginContext:
    """What a plugin may use. Stable across baas releases; documented in docs/plugins.md.

    - `plugin`: the plugin's name; `project`: the project (id, name, settings) or None for platform-wide jobs
    - `settings`: this plugin's settings for this project (validated at enable time); `config`: the operator's
      settings for the plugin (`plugins.settings.<name>` in the server config)
    - `principal`: who is calling (functions and hooks with a caller), else a server principal
    - `documents`: server-side document access (see Documents); `users`: user lookup by id or email
    - `collection(name)`: the plugin's own private MongoDB collection in the project (named `_<plugin>_<name>`)
    - `files`, `push`: those services once baas has them (None otherwise)
    - `log`: a logger named `baas.plugin.<name>`; `now()`: the current UTC time
    """

    def __init__(self, svc, plugin: str, project_id: str | None, principal: Principal | None = None):
        self._svc = svc
        self.plugin = plugin
        self.project_id = project_id
        self._project = None
        self.log = logging.getLogger(f"baas.plugin.{plugin}")
        self._principal = principal

    @property
    def project(self):
        # Looked up on first use: most hooks never need it, and after a project delete it is gone.
        if self._project is None and self.project_id is not None:
            self._project = self._svc.projects.info(self.project_id)
        return self._project

    @property
    def settings(self) -> dict:
        return self._svc.hooks.settings(self.plugin, self.project_id)

    @property
    def config(self) -> dict:
        return dict(self._svc.hooks.global_settings.get(self.plugin) or {})

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            self._principal = Principal(project=self.project, key=KeyInfo(id=f"plugin:{self.plugin}", kind="server"))
        return self._principal

    def _server_principal(self) -> Principal:
        if self.project is None:
            raise RuntimeError("this context has no project (a platform-wide job): use ctx.for_project(id)")
        return Principal(project=self.project, key=KeyInfo(id=f"plugin:{self.plugin}", kind="server"))

    @property
    def documents(self) -> Documents:
        return Documents(self._svc.documents, self._server_principal())

    @property
    def users(self) -> "Users":
        return Users(self._svc.auth, self._server_principal())

    def collection(self, name: str):
        """A private pymongo collection of this plugin in this project's database (never served by the API)."""
        return self._svc.mongo.project_db(self._server_principal().project.id)[f"_{self.plugin}_{name}"]

    @property
    def files(self):
        return self._svc.extra.get("files")

    @property
    def push(self):
        return self._svc.extra.get("push")

    def for_project(self, project_id: str) -> "PluginContext":
        return PluginContext(self._svc, self.plugin, project_id)

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc)


class Users:
    def __init__(self, auth, principal: Principal):
        self._auth = auth
        self._project_id = principal.project.id

    def get(self, user_id: str) -> dict:
        return self._auth.get_user(self._project_id, user_id)

    def find_by_email(self, email: str) -> dict | None:
        items, _ = self._auth.list_users(self._project_id, limit=1, email=email)
        return items[0] if items else None
