"""Dynamic collections and documents: the data API with access rules."""


def init_app(app, api) -> None:
    from baas.documents import api as documents_api
    from baas.documents.service import DocumentService

    svc = app.extensions["baas"]
    config = svc.config
    svc.documents = DocumentService(svc.mongo, svc.projects, svc.hooks, config["jwt"]["secret"],
                                    config["keys"]["cache_seconds"], config["mongodb"]["query_time_limit_ms"],
                                    config["query"]["max_regex_length"])
    api.register_blueprint(documents_api.blp)
    api.register_blueprint(documents_api.admin_blp)
