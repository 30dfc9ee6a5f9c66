"""Liveness and readiness probes."""
from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from baas.context import services
from baas.openapi import response_name

blp = Blueprint("health", __name__, description="Probes for load balancers and orchestrators.")


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})


class ReadinessSchema(Schema):
    status = fields.String(metadata={"example": "ready"})
    checks = fields.Dict(keys=fields.String(), values=fields.String(),
                         metadata={"example": {"mongodb": "ok", "storage": "ok"}})


@blp.route("/healthz")
class Health(MethodView):
    @blp.alt_response(200, schema=HealthSchema, success=True)
    @blp.doc(operationId="getHealth")
    def get(self):
        """The process is alive"""
        return jsonify({"status": "ok"})


@blp.route("/readyz")
class Ready(MethodView):
    @blp.alt_response(200, schema=ReadinessSchema, success=True)
    @blp.alt_response(503, response_name(503))
    @blp.doc(operationId="getReadiness")
    def get(self):
        """MongoDB and file storage answer (503 naming what is down)"""
        svc = services()
        checks, down = {}, []
        for name, probe in (("mongodb", svc.mongo.ping), ("storage", svc.blobs.ping)):
            try:
                probe()
                checks[name] = "ok"
            except ConnectionError as exc:
                checks[name] = str(exc)
                down.append(name)
        if down:
            response = jsonify({"code": 503, "status": "Service Unavailable",
                                "message": f"Not ready: {', '.join(down)} unreachable.", "errors": checks})
            response.status_code = 503
            response.headers["Retry-After"] = str(svc.config["mongodb"]["retry_after_seconds"])
            return response
        return jsonify({"status": "ready", "checks": checks})
