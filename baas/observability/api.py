"""GET /metrics: the Prometheus scrape endpoint, behind the metrics token or the admin token."""
from __future__ import annotations

import hmac

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from baas.context import services
from baas.errors import NotFound, Unauthorized
from baas.http import bearer_token
from baas.openapi import ADMIN_TOKEN, extra_errors
from baas.observability.metrics import CONTENT_TYPE

blp = Blueprint("metrics", __name__, description="Prometheus metrics for monitoring.")


@blp.route("/metrics")
class MetricsView(MethodView):
    @blp.doc(security=[{ADMIN_TOKEN: []}], responses={"200": {
        "description": "Prometheus text exposition format 0.0.4.",
        "content": {"text/plain": {"schema": {"type": "string"}}}},
        # 401: no or a wrong token; 404: metrics.enabled is false; 503: the admin token cannot be checked
        **extra_errors(401, 404, 503)["responses"]})
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
