"""Cloud functions for tests/plugins/test_functions.py."""
from marshmallow import Schema, fields

from baas.plugins import Rejected, function


@function("add", access="public", schema={"type": "object", "required": ["a", "b"], "additionalProperties": False,
                                          "properties": {"a": {"type": "number"}, "b": {"type": "number"}}})
def add(ctx, args):
    """Add two numbers."""
    return args["a"] + args["b"]


@function("whoami")
def whoami(ctx, args):
    return {"user": ctx.principal.user_id, "project": ctx.project_id, "plugin": ctx.plugin}


@function("moderate", access="role", roles=["moderator"])
def moderate(ctx, args):
    return "moderated"


class NoteInput(Schema):
    title = fields.String(required=True)


@function("save_note", access="server", schema=NoteInput)
def save_note(ctx, args):
    return ctx.documents.create("notes", {"title": args["title"]})["_id"]


@function("refuse", access="public")
def refuse(ctx, args):
    raise Rejected("Not today.", status=409)


@function("explode", access="public")
def explode(ctx, args):
    raise ValueError("secret internals")


@function("limited", access="public", rate_limit="2/minute")
def limited(ctx, args):
    return "ok"
