"""The floor the documents benchmark compares baas with: bare Flask views doing one pymongo call each.

No keys, rules, hooks, validation or error format: what is left is Flask, pymongo, orjson and the HTTP server,
served by granian with the same workers and threads as the `baas serve` under test, on the same database and
collection. On a shared machine the floor moves with the neighbours, so each run measures its own next to the
baas scenarios (documents.py `floor_get`, `floor_create`, `floor_query`) and the difference is baas's own cost.

    granian --interface wsgi --factory --working-dir benchmarks floor_app:create_app

Configured by environment: BAAS_FLOOR_MONGODB_URI, BAAS_FLOOR_DATABASE, BAAS_FLOOR_COLLECTION (read and
queried), BAAS_FLOOR_WRITES_COLLECTION (created into, so creates never grow the queried collection),
BAAS_FLOOR_SOCKET_TIMEOUT_MS (pymongo's socketTimeoutMS; unset: none, the driver's default. baas sets one, and
CPython polls a socket that has a timeout before each send: one more syscall, and GIL release, per command).
"""
from __future__ import annotations

import os
import random
from datetime import datetime, timezone

import orjson
import pymongo
from bson import ObjectId
from flask import Flask, Response, request


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), status, mimetype="application/json")


def create_app() -> Flask:
    socket_timeout_ms = int(os.environ.get("BAAS_FLOOR_SOCKET_TIMEOUT_MS") or 0) or None
    client = pymongo.MongoClient(os.environ["BAAS_FLOOR_MONGODB_URI"], tz_aware=True,
                                 uuidRepresentation="standard", appname="baas-bench-floor",
                                 socketTimeoutMS=socket_timeout_ms)
    database = client[os.environ["BAAS_FLOOR_DATABASE"]]
    collection = database[os.environ.get("BAAS_FLOOR_COLLECTION", "c_bench")]
    writes = database[os.environ.get("BAAS_FLOOR_WRITES_COLLECTION", collection.name)]
    app = Flask(__name__)

    @app.get("/floor/documents/<doc_id>")
    def get_document(doc_id):
        doc = collection.find_one({"_id": doc_id})
        return _json(doc) if doc is not None else _json({"message": "not found"}, 404)

    @app.post("/floor/documents")
    def create_document():
        # The same stored document as baas's create (system fields included), so the database work is equal.
        now = datetime.now(timezone.utc)
        doc = {"_id": str(ObjectId()), "_created": now, "_updated": now, "_owner": None,
               "_rev": f"{random.getrandbits(48):012x}", **orjson.loads(request.get_data())}
        writes.insert_one(doc)
        return _json(doc, 201)

    @app.get("/floor/documents")
    def query_documents():
        group = int(request.args["group"])
        # The shape baas sends the embedded database for a field its schema keeps scalar (an index serves it).
        items = list(collection.find({"group": {"$eq": group}}, sort=[("score", -1), ("_id", 1)], limit=20))
        return _json({"items": items})

    return app
