"""baas: a small, fast, self-hostable backend-as-a-service."""
from __future__ import annotations

__version__ = "0.1.0"

# A reply later than the query time limit plus this margin means the database stopped answering.
QUERY_REPLY_MARGIN_MS = 5000


def create_app(config: dict | None = None):
    """Build a configured Flask app. The only place where baas is wired together.

    `config` is a (possibly partial) nested mapping of the keys in baas.config.SCHEMA. Without
    `mongodb.uri` an embedded nx-27017 is started under `data_dir` and stopped when the app is closed.
    """
    import atexit
    from pathlib import Path

    from baas import config as config_module
    from baas import errors, health, http, openapi, runtime, swagger_ui
    from baas.flask_app import BaasFlask
    from baas.context import Services
    from baas import observability
    from baas.observability.logs import configure_access_log, configure_logging
    from baas.observability.metrics import SHARED_COLLECTION, Metrics
    from baas.plugins import manager as plugin_manager
    from baas.projects import api as projects_api
    from baas.projects.admin import AdminTokens
    from baas.projects.keys import KeyService
    from baas.projects.service import ProjectService
    from baas.projects.transfer import KeysPart, ProjectTransfer
    from baas.sealing import Sealer
    from baas.storage.blobs_local import LocalBlobStore
    from baas.storage.blobs_s3 import S3BlobStore
    from baas.storage.mongo import MongoStore

    cfg = config_module.from_mapping(config)
    configure_logging(cfg)
    cfg, embedded = runtime.resolve(cfg)

    app = BaasFlask("baas")
    app.config.update(
        SECRET_KEY=cfg["jwt"]["secret"],
        API_TITLE="baas",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=f"/{swagger_ui.STATIC_PREFIX}/",  # served from the installed package: works offline
        # Swagger UI would otherwise send the spec's URL to validator.swagger.io for a badge on every public host.
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        JSON_SORT_KEYS=False,
    )

    mongo = MongoStore(cfg["mongodb"]["uri"], cfg["mongodb"]["db_prefix"], cfg["mongodb"]["timeout_ms"],
                       socket_timeout_ms=cfg["mongodb"]["query_time_limit_ms"] + QUERY_REPLY_MARGIN_MS)
    s3 = cfg["storage"]["s3"]
    if s3["endpoint"]:
        blobs = S3BlobStore(s3["endpoint"], s3["access_key"], s3["secret_key"], s3["bucket"], s3["secure"],
                            s3["region"], s3["timeout_seconds"])
    else:
        blobs = LocalBlobStore(Path(cfg["data_dir"]) / "files")
    hooks = plugin_manager.from_config(cfg["plugins"])
    cache_seconds = cfg["keys"]["cache_seconds"]
    svc = Services(config=cfg, mongo=mongo, blobs=blobs, hooks=hooks, embedded=embedded,
                   metrics=Metrics(database_restarts=lambda: runtime.database_restarts(mongo),
                                   shared=mongo.platform[SHARED_COLLECTION]))
    svc.sealer = Sealer(cfg["secrets"]["encryption_key"], cfg["secrets"]["previous_encryption_keys"])
    svc.projects = ProjectService(mongo, blobs, hooks, cache_seconds)
    svc.keys = KeyService(mongo, svc.projects, cache_seconds)
    svc.transfer = ProjectTransfer(mongo, svc.projects, blobs, cfg["projects"]["max_import_bytes"], cache_seconds)
    svc.transfer.parts.append(KeysPart(mongo.platform["api_keys"], svc.keys.forget_cached))
    svc.admin = AdminTokens(mongo, cfg["admin_token"], cache_seconds)
    app.extensions["baas"] = svc
    if embedded is not None:
        atexit.register(svc.close)

    configure_access_log(cfg)
    errors.init_app(app)
    api = openapi.BaasApi(app, spec_kwargs={
        "info": {"description": "Client API under /v1 (X-API-Key), admin API under /admin/v1 (admin token)."},
        "security": openapi.KEY_ONLY,
        "extra_plugins": [openapi.ContractPlugin()],
    })
    observability.init_app(app, api)  # before baas.http, so requests it refuses are timed and logged too
    http.init_app(app)
    swagger_ui.init_app(app)
    api.register_blueprint(health.blp)
    api.register_blueprint(projects_api.blp)
    api.register_blueprint(projects_api.client_blp)
    for feature in _features():
        feature.init_app(app, api)
    # flask-smorest registers its own HTTPException handler; ours keeps every error in one shape.
    errors.init_app(app)
    return app


def _features():
    """Feature packages that plug their services and blueprints in (each has init_app(app, api))."""
    import importlib

    names = ("baas.plugins", "baas.auth", "baas.documents", "baas.files", "baas.push", "baas.functions",
             "baas.jobs")
    modules = []
    for name in names:
        module = importlib.import_module(name)
        if hasattr(module, "init_app"):
            modules.append(module)
    return modules
