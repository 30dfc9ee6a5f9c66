"""HTTP views of the data API: thin wrappers that hand plain values to the DocumentService.

Document responses are serialized with orjson straight into the response (no marshmallow on the hot path).
"""
from __future__ import annotations

import orjson
from flask import request
from flask_smorest import Blueprint
from werkzeug.datastructures import Headers
from werkzeug.urls import iri_to_uri

from baas.context import current_principal, services
from baas.openapi import (ETAG, IF_MATCH, IF_NONE_MATCH, KEY_ONLY, LOCATION, DirectMethodView, describe,
                          extra_errors)
from baas.documents.schemas import (AggregateSchema, BatchInSchema, BatchOutSchema, CollectionPutSchema,
                                    CollectionSchema, DocumentPageSchema, DocumentSchema, query_parameters)
from baas.documents.service import FindParams, etag_matches
from baas.errors import Invalid
from baas.flask_app import BaasResponse as Response
from baas.http import json_body, json_default

blp = Blueprint("documents", __name__, url_prefix="/v1",
                description="Collections and documents (X-API-Key; rules apply to client keys).")
admin_blp = Blueprint("admin-collections", __name__, url_prefix="/admin/v1/projects",
                      description="Collection definitions of a project (platform admin token).")

# Datetimes go through json_default: orjson would print microseconds, and every baas date has milliseconds.
# OpenAPI: document bodies are any JSON object; the collection's schema (if any) is checked by the service.
JSON_OBJECT_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
JSON_CHANGE_BODY = {"required": True, "content": {"application/json": {"schema": {"type": "object",
                                                                                   "minProperties": 1}}}}
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


class JsonResponse(Response):
    """A finished JSON body with its headers built as one list.

    werkzeug's constructor sets Content-Type and Content-Length one validated header at a time, and
    get_wsgi_headers copies and rescans the headers for every response; skipping both takes ~7% of the
    Python calls out of a GET by id. The result is the same response: Content-Type, Content-Length, then the
    given headers, with Location already a URI (iri_to_uri, as werkzeug would make it).
    """

    def __init__(self, body: bytes, status: int = 200, headers: list | None = None):
        pairs = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if headers:
            pairs += headers
            # Headers(pairs) checks every value for line breaks one add() at a time; the given values (ETag,
            # Location) are checked here at once, and anything unusual goes the validating way.
            if not all(type(value) is str and "\n" not in value and "\r" not in value for _, value in headers):
                self.headers = Headers(pairs)
                pairs = None
        if pairs is not None:
            self.headers = Headers()
            self.headers._list = pairs  # werkzeug keeps (name, value) pairs in this list
        self.status = status
        self.direct_passthrough = False
        self._on_close = []
        self.response = [body]

    def get_wsgi_headers(self, environ) -> Headers:
        if self.response and len(self.response) == 1 and self.status_code in (200, 201):
            return self.headers  # nothing for werkzeug to fix: the length is set, Location is a URI
        return super().get_wsgi_headers(environ)


def json_response(body, status: int = 200, headers: list | None = None) -> Response:
    return JsonResponse(orjson.dumps(body, default=json_default, option=_OPTIONS), status, headers)


def _etag(doc: dict) -> str:
    return f'"{doc.get("_rev", "")}"'


def _document_response(doc: dict, status: int = 200, headers: list | None = None) -> Response:
    etag = [("ETag", _etag(doc))]
    return json_response(doc, status, etag + headers if headers else etag)


def _body():
    body = json_body()
    if body is None:
        raise Invalid("Send a JSON object as the request body.", errors={"json": ["Missing body."]})
    return body


# --- collection definitions ----------------------------------------------------------------------------------

@blp.route("/collections")
class Collections(DirectMethodView):
    @blp.response(200, CollectionSchema(many=True))
    @blp.doc(operationId="listCollections", security=KEY_ONLY)
    def get(self):
        """List the project's collection definitions (server key, scope collections:admin)"""
        return services().documents.list_collections(current_principal())


@blp.route("/collections/<name>")
class Collection(DirectMethodView):
    @blp.response(200, CollectionSchema)
    @blp.doc(operationId="getCollection", security=KEY_ONLY)
    def get(self, name):
        """Show a collection's definition (server key)"""
        return services().documents.get_collection(current_principal(), name)

    @blp.arguments(CollectionPutSchema)
    @blp.response(200, CollectionSchema)
    @blp.alt_response(201, schema=CollectionSchema, description="The collection was newly defined.")
    @blp.doc(operationId="putCollection", security=KEY_ONLY, **extra_errors(409))
    def put(self, body, name):
        """Define or change a collection: schema, indexes and rules; omitted keys keep their value (server key)"""
        definition, created = services().documents.put_collection(current_principal(), name, body)
        return definition, 201 if created else 200

    @blp.response(204)
    @blp.doc(operationId="deleteCollection", security=KEY_ONLY)
    def delete(self, name):
        """Delete a collection with all its documents (server key)"""
        services().documents.delete_collection(current_principal(), name)


@admin_blp.route("/<project_id>/collections")
class AdminCollections(DirectMethodView):
    @admin_blp.response(200, CollectionSchema(many=True))
    @admin_blp.doc(operationId="adminListCollections")
    def get(self, project_id):
        """List a project's collection definitions"""
        return services().documents.list_collections(current_principal(), project_id)


@admin_blp.route("/<project_id>/collections/<name>")
class AdminCollection(DirectMethodView):
    @admin_blp.response(200, CollectionSchema)
    @admin_blp.doc(operationId="adminGetCollection")
    def get(self, project_id, name):
        """Show a collection's definition"""
        return services().documents.get_collection(current_principal(), name, project_id)

    @admin_blp.arguments(CollectionPutSchema)
    @admin_blp.response(200, CollectionSchema)
    @admin_blp.alt_response(201, schema=CollectionSchema, description="The collection was newly defined.")
    @admin_blp.doc(operationId="adminPutCollection", **extra_errors(409))
    def put(self, body, project_id, name):
        """Define or change a collection: schema, indexes and rules; omitted keys keep their value"""
        definition, created = services().documents.put_collection(current_principal(), name, body, project_id)
        return definition, 201 if created else 200

    @admin_blp.response(204)
    @admin_blp.doc(operationId="adminDeleteCollection")
    def delete(self, project_id, name):
        """Delete a collection with all its documents"""
        services().documents.delete_collection(current_principal(), name, project_id)


# --- documents -----------------------------------------------------------------------------------------------

@blp.route("/collections/<name>/documents")
class Documents(DirectMethodView):
    @describe(operationId="listDocuments",
              parameters=query_parameters("filter", "sort", "limit", "offset", "fields", "cursor", "count", "expand"))
    @blp.alt_response(200, schema=DocumentPageSchema, success=True)
    def get(self, name):
        """Query documents: filter, sort, fields, keyset pages (cursor), offset, count, expand"""
        args = request.args
        params = FindParams(args.get("filter"), args.get("sort"), args.get("limit"), args.get("offset"),
                            args.get("fields"), args.get("cursor"), args.get("count"), args.get("expand"))
        return json_response(services().documents.find(current_principal(), name, params))

    @describe(operationId="createDocument", requestBody=JSON_OBJECT_BODY, **extra_errors(409))
    @blp.alt_response(201, schema=DocumentSchema, success=True, headers={"ETag": ETAG, "Location": LOCATION})
    def post(self, name):
        """Create a document (the collection springs into being unless the project is strict)"""
        doc = services().documents.create(current_principal(), name, _body())
        # Collection names and ids are plain ASCII letters, digits, '_' and '-': only a mount point needs quoting.
        root = request.script_root
        location = f"{iri_to_uri(root) if root else ''}/v1/collections/{name}/documents/{doc['_id']}"
        return _document_response(doc, 201, [("Location", location)])


@blp.route("/collections/<name>/documents/<doc_id>")
class Document(DirectMethodView):
    @describe(operationId="getDocument", parameters=[IF_NONE_MATCH])
    @blp.alt_response(200, schema=DocumentSchema, success=True, headers={"ETag": ETAG})
    @blp.alt_response(304, description="Not modified: the document still has the If-None-Match ETag.",
                      headers={"ETag": ETAG})
    def get(self, name, doc_id):
        """Read a document; its ETag goes in If-Match on writes"""
        doc = services().documents.get(current_principal(), name, doc_id)
        etag = _etag(doc)
        if_none_match = request.environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match is not None and etag_matches(if_none_match, doc.get("_rev", "")):
            return Response(status=304, headers={"ETag": etag})
        return _document_response(doc)

    @describe(operationId="replaceDocument", requestBody=JSON_OBJECT_BODY, parameters=[IF_MATCH],
             **extra_errors(409, 412))
    @blp.alt_response(200, schema=DocumentSchema, success=True, headers={"ETag": ETAG})
    def put(self, name, doc_id):
        """Replace a document's fields (If-Match: 412 when it changed)"""
        doc = services().documents.replace(current_principal(), name, doc_id, _body(),
                                           request.headers.get("If-Match"))
        return _document_response(doc)

    @describe(operationId="updateDocument", requestBody=JSON_CHANGE_BODY, parameters=[IF_MATCH],
             **extra_errors(409, 412))
    @blp.alt_response(200, schema=DocumentSchema, success=True, headers={"ETag": ETAG})
    def patch(self, name, doc_id):
        """Merge fields, or apply $set $unset $inc $push $addToSet $pull (If-Match: 412 when it changed)"""
        doc = services().documents.update(current_principal(), name, doc_id, _body(),
                                          request.headers.get("If-Match"))
        return _document_response(doc)

    @describe(operationId="deleteDocument", parameters=[IF_MATCH], **extra_errors(409, 412))
    @blp.alt_response(204, success=True)
    def delete(self, name, doc_id):
        """Delete a document (If-Match: 412 when it changed)"""
        services().documents.delete(current_principal(), name, doc_id, request.headers.get("If-Match"))
        return Response(status=204)


@blp.route("/collections/<name>/aggregate")
class Aggregate(DirectMethodView):
    @blp.doc(operationId="aggregateDocuments", parameters=query_parameters("group_by", "metrics", "filter"))
    @blp.alt_response(200, schema=AggregateSchema, success=True)
    def get(self, name):
        """Grouped metrics (count, sum, avg, min, max) over the documents the caller may read"""
        args = request.args
        return json_response(services().documents.aggregate(current_principal(), name, args.get("group_by"),
                                                             args.get("metrics"), args.get("filter")))


@blp.route("/batch")
class Batch(DirectMethodView):
    @blp.doc(operationId="runBatch", requestBody={"required": True,
                                                    "content": {"application/json": {"schema": BatchInSchema}}})
    @blp.alt_response(200, schema=BatchOutSchema, success=True)
    def post(self):
        """Up to 100 create/replace/update/delete operations, run in order; NOT atomic: each has its own result"""
        body = _body()
        if not isinstance(body, dict) or set(body) != {"operations"}:
            raise Invalid("Send {\"operations\": [...]}.", errors={"operations": ["Missing."]})
        return json_response({"results": services().documents.batch(current_principal(), body["operations"])})
