"""Cloud functions: POST /v1/functions/{name} runs a function a plugin registered with @function."""


def init_app(app, api) -> None:
    from baas.functions import api as functions_api
    from baas.functions.service import FunctionService

    svc = app.extensions["baas"]
    svc.extra["functions"] = FunctionService(svc)
    app.register_blueprint(functions_api.bp)
    api.register_blueprint(functions_api.admin_blp)
    functions_api.document(api, svc.hooks.functions())
