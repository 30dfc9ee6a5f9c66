"""Schemas of the data API: definitions are loaded with marshmallow; documents are described for OpenAPI only.

Document bodies are arbitrary JSON and sit on the hot path, so their views read and write JSON with orjson
directly; the schemas below only tell the OpenAPI document what to expect.
"""
from marshmallow import INCLUDE, Schema, fields, validate

from baas.query import COLLECTION_NAME, DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET
from baas.documents.service import MAX_BATCH
from baas.rules import ACTIONS
from baas.schemas import StrictSchema, UtcDateTime


INDEX_DESCRIPTION = ("Indexes, each {name, keys: {field: 1|-1, ...}, unique: false, expire_after_seconds: null} "
                     "(a TTL index has one date field).")
INDEX_EXAMPLE = [{"name": "by_score", "keys": {"score": -1, "name": 1}, "unique": False, "expire_after_seconds": None}]


RULE_DESCRIPTION = ("public | authenticated | owner | role:<name> | none | a filter template such as "
                    "{\"members\": \"@user.id\"} | a list of these (any of)")


class CollectionPutSchema(StrictSchema):
    schema = fields.Dict(allow_none=True, metadata={"description": "JSON Schema of the documents, or null."})
    # Only shapes are checked here; the service checks the content and answers 400 naming the problem.
    indexes = fields.List(fields.Dict(), metadata={"description": INDEX_DESCRIPTION, "example": INDEX_EXAMPLE})
    rules = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True),
                        metadata={"description": RULE_DESCRIPTION + "; actions: " + ", ".join(ACTIONS)})


class CollectionSchema(Schema):
    name = fields.String(metadata={"pattern": COLLECTION_NAME.pattern})
    schema = fields.Dict(allow_none=True)
    indexes = fields.List(fields.Dict())
    rules = fields.Dict()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class DocumentSchema(Schema):
    """Any JSON object plus the read-only system fields."""

    class Meta:
        unknown = INCLUDE

    _id = fields.String(data_key="_id")
    _created = UtcDateTime(data_key="_created")
    _updated = UtcDateTime(data_key="_updated")
    _owner = fields.String(data_key="_owner", allow_none=True)
    _rev = fields.String(data_key="_rev", metadata={"description": "Revision; the ETag header carries it."})


class DocumentPageSchema(Schema):
    items = fields.List(fields.Nested(DocumentSchema))
    next_cursor = fields.String(allow_none=True)
    total = fields.Integer(metadata={"description": "Only with count=true."})


class AggregateSchema(Schema):
    groups = fields.List(fields.Dict())


class BatchInSchema(StrictSchema):
    operations = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=MAX_BATCH),
                             metadata={"description": "Up to 100 of {op: create|replace|update|delete, collection, "
                                                      "id, document, if_match}."})


class BatchOutSchema(Schema):
    results = fields.List(fields.Dict())


_QUERY_PARAMETERS = {
    "filter": ({"type": "string"}, "JSON filter in MongoDB query syntax (whitelisted operators)."),
    "sort": ({"type": "string"}, "Comma-separated fields, '-' for descending: -score,name."),
    "limit": ({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
              f"Page size, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT})."),
    "offset": ({"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
               f"Documents to skip (at most {MAX_OFFSET})."),
    "fields": ({"type": "string"}, "Comma-separated top-level fields to return (_id always)."),
    "cursor": ({"type": "string"}, "next_cursor of the previous page."),
    "count": ({"type": "boolean", "default": False}, "true adds 'total' (costs a count)."),
    "expand": ({"type": "string"}, "Comma-separated reference fields to replace by the referenced documents."),
    "group_by": ({"type": "string"}, "Field to group by (omit for one group)."),
    "metrics": ({"type": "string"}, "count,sum:<f>,avg:<f>,min:<f>,max:<f> (default count)."),
}


def query_parameters(*names):
    return [{"in": "query", "name": n, "schema": dict(_QUERY_PARAMETERS[n][0]), "description": _QUERY_PARAMETERS[n][1]}
            for n in names]
