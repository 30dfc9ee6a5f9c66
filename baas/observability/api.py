"""GET /metrics: the Prometheus scrape endpoint, behind the metrics token or the admin token."""
from __future__ import annotations

import hmac

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from baas.context import services
from baas.errors import NotFound, Unauthorized
from baas.http import bearer_token
from baas.observability.metrics import CONTENT_TYPE

blp = Blueprint("metrics", __name__, description="Prometheus metrics for monitoring.")


@blp.route("/metrics")
class MetricsView(MethodView):
    @blp.doc(security=[{"bearer": []}], responses={"200": {
        "description": "Prometheus text exposition format 0.0.4.",
        "content": {"text/plain": {"schema": {"type": "string"}}}}})
    @blp.alt_response(401, response="DEFAULT_ERROR")  # missing or wrong metrics token or admin token
    @blp.alt_response(404, response="DEFAULT_ERROR")  # metrics switched off (metrics.enabled: false)
    def get(self):
        """Server metrics in Prometheus text format (Bearer metrics.token, or the admin token)"""
        svc = services()
        settings = svc.config["metrics"]
        if not settings["enabled"]:
            raise NotFound("Metrics are switched off on this server.")
        token = bearer_token(request.environ)
        if token is None:
            raise Unauthorized("Send 'Authorization: Bearer <metrics token or admin token>'.")
        configured = settings["token"]
        if not (configured and hmac.compare_digest(token.encode(), configured.encode())):
            svc.admin.verify(token)
        return Response(svc.metrics.render(), mimetype=None, content_type=CONTENT_TYPE)
