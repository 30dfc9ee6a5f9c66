"""Liveness and readiness probes."""
from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from baas.context import services

blp = Blueprint("health", __name__, description="Probes for load balancers and orchestrators.")


@blp.route("/healthz")
class Health(MethodView):
    def get(self):
        """The process is alive"""
        return jsonify({"status": "ok"})


@blp.route("/readyz")
class Ready(MethodView):
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
