"""audit_log: who changed what. Every document write and user deletion lands in the project's `_audit_log_entries`
collection with the principal, action, collection, id and a JSON diff; the server key reads it through the
`audit_log.entries` function; the `retention` job deletes entries older than `retention_days`.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime

from baas.plugins import function, hookimpl, job

SYSTEM = ("_created", "_updated", "_rev")

baas_plugin_settings = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "retention_days": {"type": "integer", "minimum": 1, "maximum": 3650, "default": 90},
        "collections": {"type": "array", "items": {"type": "string"},
                        "description": "Only these collections (default: all)."},
    },
}


def diff(before: dict | None, after: dict | None) -> dict:
    """Top-level changes: {"added": {k: new}, "removed": {k: old}, "changed": {k: [old, new]}}."""
    before, after = before or {}, after or {}
    result = {"added": {}, "removed": {}, "changed": {}}
    for key in sorted(set(before) | set(after)):
        if key in SYSTEM:
            continue
        if key not in before:
            result["added"][key] = after[key]
        elif key not in after:
            result["removed"][key] = before[key]
        elif before[key] != after[key]:
            result["changed"][key] = [before[key], after[key]]
    return {k: v for k, v in result.items() if v}


def _who(principal) -> dict:
    if principal is None:
        return {"kind": "system"}
    if principal.admin:
        return {"kind": "admin"}
    return {"kind": principal.key.kind if principal.key else "unknown",
            "key_id": principal.key.id if principal.key else None, "user_id": principal.user_id}


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@hookimpl
def baas_after_document_write(ctx, principal, collection, action, document, previous):
    wanted = ctx.settings.get("collections")
    if wanted and collection not in wanted:
        return
    ctx.collection("entries").insert_one({
        "_id": uuid.uuid4().hex, "at": time.time(), "principal": _who(principal), "action": action,
        "collection": collection, "document_id": (document or previous or {}).get("_id"),
        "diff": _plain(diff(previous, document))})


@hookimpl
def baas_after_user_delete(ctx, user_id):
    ctx.collection("entries").insert_one({"_id": uuid.uuid4().hex, "at": time.time(),
                                          "principal": {"kind": "system"}, "action": "user.delete",
                                          "collection": None, "document_id": user_id, "diff": {}})


@function("entries", access="server", schema={
    "type": "object", "additionalProperties": False,
    "properties": {"collection": {"type": "string", "maxLength": 64},
                   "document_id": {"type": "string", "maxLength": 128},
                   "limit": {"type": "integer", "minimum": 1, "maximum": 500}}})
def entries(ctx, args):
    """Audit entries, newest first (server key only)."""
    query = {k: args[k] for k in ("collection", "document_id") if k in args}
    found = ctx.collection("entries").find(query).sort("at", -1).limit(args.get("limit", 100))
    return [{**entry, "id": entry.pop("_id")} for entry in found]


@job(cron="17 3 * * *")
def retention(ctx):
    """Delete audit entries older than retention_days (default 90)."""
    cutoff = time.time() - ctx.settings.get("retention_days", 90) * 86400
    removed = ctx.collection("entries").delete_many({"at": {"$lt": cutoff}}).deleted_count
    ctx.log.info("removed %d audit entries older than %s", removed, cutoff)
