"""Production observability: Prometheus metrics at /metrics and one structured log line per request.

Other features count their own events through the app's Metrics (`services().metrics`, see metrics.py).
"""
from __future__ import annotations


def init_app(app, api) -> None:
    """Wire request metrics and access logs; called before baas.http so every request is timed, refused ones too."""
    from baas.observability import api as metrics_api
    from baas.observability import requests

    requests.init_app(app)
    api.register_blueprint(metrics_api.blp)


def background_runners(svc) -> list:
    from baas.observability import metrics

    return metrics.background_runners(svc)
