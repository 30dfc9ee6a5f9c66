"""cleanup: delete documents older than a per-collection time to live, every 10 minutes.

Deletes go through the documents service, so other plugins' hooks (audit_log, webhooks) see them like any delete.
"""
from __future__ import annotations

from datetime import timedelta

from baas.errors import NotFound
from baas.plugins import job

PER_RUN = 500  # per collection and run, so one run stays short; the next run continues

baas_plugin_settings = {
    "type": "object",
    "additionalProperties": False,
    "required": ["collections"],
    "properties": {
        "collections": {
            "type": "object", "maxProperties": 100,
            "additionalProperties": {"type": "integer", "minimum": 60},
            "description": "Collection name -> seconds a document lives after _created.",
        },
    },
}


@job(minutes=10)
def expire(ctx):
    """Delete documents older than their collection's TTL."""
    for collection, seconds in sorted(ctx.settings.get("collections", {}).items()):
        cutoff = ctx.now() - timedelta(seconds=seconds)
        try:
            page = ctx.documents.find(collection, {"_created": {"$lt": cutoff}}, sort="_created", limit=PER_RUN)
        except NotFound:
            continue
        for doc in page["items"]:
            try:
                ctx.documents.delete(collection, doc["_id"])
            except NotFound:
                pass  # deleted meanwhile
        if page["items"]:
            ctx.log.info("deleted %d expired documents from %s", len(page["items"]), collection)
