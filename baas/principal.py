"""Who is calling: the project, the API key's kind and scopes, and the end user (or none).

Resolved once per request (see baas.http) and passed to services as a plain value, so HTTP, CLI,
batch and jobs all ask the same questions of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from baas.errors import Forbidden

SCOPES = (
    "auth",             # sign-up, log-in and the user's own account (client apps)
    "documents:read",
    "documents:write",
    "collections:admin",
    "files:read",
    "files:write",
    "push:send",
    "push:subscribe",
    "users:read",
    "users:write",
    "functions:call",
)
KEY_KINDS = ("client", "server")


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    id: str
    name: str
    settings: dict = field(default_factory=dict)

    @property
    def cors_origins(self) -> tuple:
        return tuple(self.settings.get("cors_origins") or ())


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    kind: str                  # "client" or "server"
    scopes: frozenset = frozenset()  # empty: every scope


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: str
    roles: tuple = ()
    anonymous: bool = False
    session_id: str | None = None
    token_id: str | None = None      # the access token's jti
    token_expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    project: ProjectInfo | None
    key: KeyInfo | None = None
    user: UserInfo | None = None
    admin: bool = False        # the platform admin (admin API), acting on `project`

    @property
    def project_id(self) -> str | None:
        return self.project.id if self.project else None

    @property
    def is_server(self) -> bool:
        """Server keys and the platform admin have full access to their project and bypass access rules."""
        return self.admin or (self.key is not None and self.key.kind == "server")

    @property
    def user_id(self) -> str | None:
        return self.user.id if self.user else None

    @property
    def roles(self) -> tuple:
        return self.user.roles if self.user else ()

    def has_scope(self, scope: str) -> bool:
        if self.admin or self.key is None or not self.key.scopes:
            return True
        return scope in self.key.scopes

    def require_scope(self, scope: str) -> None:
        if not self.has_scope(scope):
            raise Forbidden(f"This API key lacks the scope '{scope}'.")

    def require_server(self) -> None:
        if not self.is_server:
            raise Forbidden("This action needs a server key.")

    def require_user(self) -> UserInfo:
        from baas.errors import Unauthorized

        if self.user is None:
            raise Unauthorized("This action needs a signed-in user: send 'Authorization: Bearer <access token>'.")
        return self.user

    def variables(self) -> dict:
        """Values that access-rule templates may refer to as @user.id, @user.roles, @project.id."""
        return {
            "user.id": self.user_id,
            "user.roles": list(self.roles),
            "user.anonymous": bool(self.user and self.user.anonymous),
            "project.id": self.project_id,
        }
