"""Admin API for plugins (platform admin token): what is installed, and per-project enablement with settings."""
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from baas.context import services
from baas.schemas import StrictSchema, UtcDateTime

blp = Blueprint("admin-plugins", __name__, url_prefix="/admin/v1/plugins",
                description="Installed plugins, with the error of any that failed to load (platform admin token).")
project_blp = Blueprint("admin-project-plugins", __name__, url_prefix="/admin/v1/projects",
                        description="Plugins enabled per project, with their settings (platform admin token).")


class PluginSchema(Schema):
    name = fields.String()
    source = fields.String(metadata={"description": "entry point, module, folder or registered"})
    status = fields.String(metadata={"description": "loaded or failed"})
    error = fields.String(allow_none=True)
    enabled_globally = fields.Boolean()
    hooks = fields.List(fields.String())
    functions = fields.List(fields.String())
    jobs = fields.List(fields.String())
    settings_schema = fields.Dict(allow_none=True)


class EnabledPluginSchema(Schema):
    plugin = fields.String()
    project_id = fields.String()
    enabled_globally = fields.Boolean()
    settings = fields.Dict()
    updated_at = UtcDateTime(allow_none=True)


class EnableSchema(StrictSchema):
    settings = fields.Dict(load_default=None, metadata={"description": "Checked against the plugin's "
                                                                       "settings_schema."})


def _admin():
    return services().extra["plugin_admin"]


@blp.route("")
class Plugins(MethodView):
    @blp.response(200, PluginSchema(many=True))
    def get(self):
        """List installed plugins, the failed ones with their error"""
        return _admin().list()


@project_blp.route("/<project_id>/plugins")
class ProjectPlugins(MethodView):
    @project_blp.response(200, EnabledPluginSchema(many=True))
    def get(self, project_id):
        """List the plugins that run for a project (enabled for it or globally)"""
        return _admin().for_project(project_id)


@project_blp.route("/<project_id>/plugins/<name>")
class ProjectPlugin(MethodView):
    @project_blp.response(200, EnabledPluginSchema)
    def get(self, project_id, name):
        """One plugin's enablement and settings in a project"""
        return _admin().get(project_id, name)

    @project_blp.arguments(EnableSchema, required=False)
    @project_blp.response(200, EnabledPluginSchema)
    @project_blp.alt_response(201, schema=EnabledPluginSchema, description="Enabled for the first time")
    def post(self, body, project_id, name):
        """Enable a plugin for a project, or change its settings (checked against the plugin's schema)"""
        described, created = _admin().enable(project_id, name, (body or {}).get("settings"))
        return described, 201 if created else 200

    @project_blp.response(204)
    def delete(self, project_id, name):
        """Disable a plugin for a project (its settings are forgotten)"""
        _admin().disable(project_id, name)
