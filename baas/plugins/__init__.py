"""Extension system: hookspecs, discovery with error isolation, per-project enablement, functions and jobs.

The public API for plugin authors is what this module exports (`__all__`); the rest of baas.plugins is private.
"""
from baas.errors import Rejected
from baas.plugins.context import PluginContext
from baas.plugins.hookspecs import hookimpl
from baas.plugins.registry import function, job

__all__ = ["hookimpl", "Rejected", "function", "job", "PluginContext", "init_app"]


def init_app(app, api) -> None:
    from baas.plugins import api as plugins_api
    from baas.plugins.context import PluginContext as Context
    from baas.plugins.enablement import Enablements

    svc = app.extensions["baas"]
    enablements = Enablements(svc.mongo, svc.config["keys"]["cache_seconds"])
    svc.extra["plugin_enablements"] = enablements
    svc.hooks.enablements = enablements
    svc.hooks.context_factory = lambda plugin, project_id: Context(svc, plugin, project_id)
    svc.projects.on_delete.append(enablements.forget_project)
    if svc.transfer is not None:
        from baas.plugins.enablement import EnablementsPart

        svc.transfer.parts.append(EnablementsPart(enablements))
    from baas.plugins.service import PluginAdmin
    svc.extra["plugin_admin"] = PluginAdmin(svc.hooks, enablements, svc.projects)
    api.register_blueprint(plugins_api.blp)
    api.register_blueprint(plugins_api.project_blp)
