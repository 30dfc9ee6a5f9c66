"""Every hook baas calls. Names start with `baas_`; baas always calls them with keyword arguments.

`before` hooks run inside the service before a write: they may change the value they are given in place or
raise baas.errors.Rejected to refuse the operation. `after` hooks are notifications: a failing one is logged
and never breaks the request or the other plugins.
"""
import pluggy

hookspec = pluggy.HookspecMarker("baas")
hookimpl = pluggy.HookimplMarker("baas")


@hookspec
def baas_project_created(project: dict) -> None:
    """After a project was created."""


@hookspec
def baas_project_deleted(project_id: str) -> None:
    """After a project and all its data were deleted."""


@hookspec
def baas_before_user_signup(project_id: str, email: str | None, data: dict) -> None:
    """Before a user is created; may change `data` or raise Rejected."""


@hookspec
def baas_after_user_signup(project_id: str, user: dict) -> None:
    """After a user signed up (anonymous users included)."""


@hookspec
def baas_after_user_login(project_id: str, user: dict) -> None:
    """After a successful log-in."""


@hookspec
def baas_before_document_write(principal, collection: str, action: str, document: dict | None,
                               previous: dict | None) -> None:
    """Before a document is created, replaced, updated or deleted (`action`: create/replace/update/delete).

    `document` is the new body (None for delete) and may be changed in place; raise Rejected to refuse.
    """


@hookspec
def baas_after_document_write(principal, collection: str, action: str, document: dict | None,
                              previous: dict | None) -> None:
    """After a document write was stored."""


@hookspec
def baas_before_push_send(project_id: str, message: dict) -> None:
    """Before a push message is queued: `message` ({audience, notification, ttl, urgency, topic, send_at}) may
    be changed in place (the notification is encoded after this hook), or raise Rejected to refuse it."""


@hookspec
def baas_after_push_send(project_id: str, message: dict) -> None:
    """After a push message was queued (its delivery runs later, in the background)."""
