"""The per-app container of services and adapters, kept in app.extensions["baas"]."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g


@dataclass
class Services:
    config: dict
    mongo: Any                     # baas.storage.mongo.MongoStore
    blobs: Any                     # a baas.storage.blobs.BlobStore
    hooks: Any                     # baas.plugins.manager.HookManager
    projects: Any = None           # baas.projects.service.ProjectService
    keys: Any = None               # baas.projects.keys.KeyService
    admin: Any = None              # baas.projects.admin.AdminTokens
    transfer: Any = None           # baas.projects.transfer.ProjectTransfer (export and import)
    auth: Any = None               # baas.auth.service.AuthService (resolves bearer tokens to users)
    documents: Any = None          # baas.documents.service.DocumentService
    limiter: Any = None            # baas.ratelimit.RateLimiter (general per-key limit and auth limits)
    metrics: Any = None            # baas.observability.metrics.Metrics (count events with its named methods)
    sealer: Any = None             # baas.sealing.Sealer (seal secrets stored in the database)
    extra: dict = field(default_factory=dict)  # features added later (files, push, ...) register here
    embedded: Any = None           # an EmbeddedMongo this app started itself, stopped on close()

    def close(self) -> None:
        if self.mongo is not None:
            self.mongo.close()
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def services() -> Services:
    return current_app.extensions["baas"]


def current_principal():
    """The principal resolved for this request (see baas.http)."""
    from baas.http import resolve_principal

    principal = g._get_current_object().__dict__.get("principal")  # one proxy lookup: every request asks
    if principal is None:
        principal = g.principal = resolve_principal()
    return principal
