"""Every hook baas calls. Names start with `baas_`; baas always calls them with keyword arguments.

Implement only the arguments you need: every hook may also take `ctx` (a baas.plugins.PluginContext for the
project the event belongs to) and `project_id`.

Failure policy:
- `before` hooks run inside the service before anything is stored. They may change the value they are given in
  place or raise `baas.plugins.Rejected("message", status=4xx)` to refuse the operation with that 4xx. Any other
  exception aborts the operation with a generic 500 (logged with the plugin's name) and nothing is written.
- `after` hooks are notifications once the change is stored: an exception is logged with the plugin's name and never
  fails the request or the other plugins.
- A hook slower than `plugins.slow_hook_ms` is logged with its plugin and duration.

Document writes use one pair of hooks for create, replace, update and delete (the `action` argument says which).
"""
import pluggy

hookspec = pluggy.HookspecMarker("baas")
hookimpl = pluggy.HookimplMarker("baas")


# ---- projects (the platform; every plugin that is loaded sees these)

@hookspec
def baas_project_created(ctx, project_id: str, project: dict) -> None:
    """After a project was created."""


@hookspec
def baas_project_deleted(ctx, project_id: str) -> None:
    """After a project and all its data were deleted."""


# ---- documents

@hookspec
def baas_before_document_write(ctx, project_id: str, principal, collection: str, action: str,
                               document: dict | None, previous: dict | None) -> None:
    """Before a document is created, replaced, updated or deleted (`action`: create/replace/update/delete).

    `document` is the full new document (system fields included; None for delete) and may be changed in place.
    Changes are validated again against the collection's JSON Schema, its access rule and the reserved-field rules
    (fields starting with `_` are the server's) before anything is stored. `previous` is the stored document
    (None for create). Raise Rejected to refuse; in a batch request only that item is refused.
    """


@hookspec
def baas_after_document_write(ctx, project_id: str, principal, collection: str, action: str,
                              document: dict | None, previous: dict | None) -> None:
    """After a document write was stored (`document` None after a delete)."""


@hookspec
def baas_before_document_query(ctx, project_id: str, principal, collection: str, action: str):
    """Before documents are read (`action`: list, read, aggregate).

    Return a filter in the client filter syntax (`{"status": "published"}`) to AND it to the query, or None.
    A returned filter only ever narrows what the caller sees: it is ANDed with the access rules, never ORed.
    """


@hookspec
def baas_after_document_read(ctx, project_id: str, principal, collection: str, documents: list) -> None:
    """After documents were read for a response (get and list): remove or mask fields in place to redact."""


# ---- auth

@hookspec
def baas_before_user_signup(ctx, project_id: str, email: str | None, data: dict) -> None:
    """Before a user is created (sign-up, anonymous users, admin-created users); may change `data` or refuse."""


@hookspec
def baas_after_user_signup(ctx, project_id: str, user: dict) -> None:
    """After a user signed up (anonymous users included)."""


@hookspec
def baas_before_user_login(ctx, project_id: str, user: dict) -> None:
    """After the password was checked and before tokens are issued; raise Rejected("reason") to veto the log-in."""


@hookspec
def baas_after_user_login(ctx, project_id: str, user: dict) -> None:
    """After a successful log-in."""


@hookspec
def baas_after_password_change(ctx, project_id: str, user_id: str, reason: str) -> None:
    """After a user's password changed (`reason`: change or reset)."""


@hookspec
def baas_before_user_delete(ctx, project_id: str, user: dict) -> None:
    """Before a user is deleted (by themselves or by a server key); raise Rejected to refuse."""


@hookspec
def baas_after_user_delete(ctx, project_id: str, user_id: str) -> None:
    """After a user was deleted."""


# ---- files (called by baas.files)

@hookspec
def baas_before_file_write(ctx, project_id: str, principal, action: str, file: dict | None,
                           previous: dict | None) -> None:
    """Before a file's metadata is stored, changed or deleted (`action`: create/update/delete).

    On create the bytes are already stored (size, sha256 and the sniffed content_type are known) and are removed
    again if the hook raises Rejected. `file` may be changed in place (name, public, metadata). `previous` is the
    stored metadata (None for create).
    """


@hookspec
def baas_after_file_write(ctx, project_id: str, principal, action: str, file: dict | None,
                          previous: dict | None) -> None:
    """After a file was created, changed or deleted (`file` None after a delete)."""


# ---- push (called by baas.push)

@hookspec
def baas_before_push_send(ctx, project_id: str, message: dict) -> None:
    """Before a push message is queued: `message` ({audience, notification, ttl, urgency, topic, send_at}) may
    be changed in place (the notification is encoded after this hook), or raise Rejected to refuse it."""


@hookspec
def baas_after_push_send(ctx, project_id: str, message: dict) -> None:
    """After a push message was queued (its delivery runs later, in the background)."""
