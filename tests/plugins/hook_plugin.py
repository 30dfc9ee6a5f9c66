"""A plugin for tests/plugins/test_hooks.py: records every hook and misbehaves on request (by document fields)."""
from baas.plugins import Rejected, hookimpl

calls = []


@hookimpl
def baas_before_document_write(ctx, collection, action, document, previous):
    calls.append(("before_write", collection, action))
    if document is None:
        if previous.get("keep"):
            raise Rejected("This document is kept.", status=409)
        return
    if document.get("crash"):
        raise RuntimeError("internal detail that must not leak")
    if document.get("reject"):
        raise Rejected("Refused by the plugin.")
    if document.get("sneak") == "reserved":
        document["_owner"] = "someone-else"
    if document.get("sneak") == "schema":
        document["stars"] = "many"
    if document.get("sneak") == "private":
        document["_secret"] = 1
    if document.get("stamp"):
        document["stamped_by"] = ctx.plugin


@hookimpl
def baas_after_document_write(collection, action, document):
    calls.append(("after_write", collection, action))
    if document is not None and document.get("after_crash"):
        raise RuntimeError("after-hooks never fail the request")


@hookimpl
def baas_before_document_query(collection, action):
    calls.append(("query", collection, action))
    return {"hidden": {"$ne": True}}


@hookimpl
def baas_after_document_read(collection, documents):
    for doc in documents:
        doc.pop("secret", None)


@hookimpl
def baas_before_user_login(user):
    if user["email"].startswith("banned"):
        raise Rejected("This account is banned.", status=403)


@hookimpl
def baas_after_user_login(user):
    calls.append(("login", user["_id"]))


@hookimpl
def baas_after_password_change(user_id, reason):
    calls.append(("password", user_id, reason))


@hookimpl
def baas_before_user_delete(user):
    if user["email"].startswith("keep"):
        raise Rejected("This user is kept.")


@hookimpl
def baas_after_user_delete(project_id, user_id):
    calls.append(("user_deleted", project_id, user_id))
