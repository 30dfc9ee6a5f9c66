"""Admin API for projects and their keys (platform admin token), and the client API's view of its own project."""
from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from baas.context import current_principal, services
from baas.http import raw_body
from baas.openapi import KEY_ONLY, extra_errors
from baas.projects.schemas import (CallerProjectSchema, ImportedSchema, ImportQuerySchema, KeyCreatedSchema, KeyCreateSchema, KeyRotatedSchema,
                                   KeyRotateSchema, KeySchema, ProjectCreateSchema, ProjectDeleteSchema, ProjectSchema,
                                   ProjectUpdateSchema)

blp = Blueprint("admin-projects", __name__, url_prefix="/admin/v1/projects",
                description="Projects and API keys (platform admin token).")
client_blp = Blueprint("project", __name__, url_prefix="/v1",
                       description="The project an API key belongs to (any key, no scope needed).")


@client_blp.route("/project")
class CallerProject(MethodView):
    @client_blp.response(200, CallerProjectSchema)
    @client_blp.doc(operationId="getCallerProject", security=KEY_ONLY)
    def get(self):
        """The project and key this request is authenticated with; lets an app check its key"""
        return services().projects.describe_caller(current_principal())


@blp.route("")
class Projects(MethodView):
    @blp.response(200, ProjectSchema(many=True))
    @blp.doc(operationId="listProjects")
    def get(self):
        """List projects"""
        return services().projects.list()

    @blp.arguments(ProjectCreateSchema)
    @blp.response(201, ProjectSchema)
    @blp.doc(operationId="createProject", **extra_errors(409))
    def post(self, body):
        """Create a project"""
        return services().projects.create(body["id"], body.get("name"), body.get("settings"))


@blp.route("/<project_id>")
class Project(MethodView):
    @blp.response(200, ProjectSchema)
    @blp.doc(operationId="getProject")
    def get(self, project_id):
        """Show a project"""
        return services().projects.get(project_id)

    @blp.arguments(ProjectUpdateSchema)
    @blp.response(200, ProjectSchema)
    @blp.doc(operationId="updateProject")
    def patch(self, body, project_id):
        """Update a project's name or settings (settings are merged key by key)"""
        return services().projects.update(project_id, body.get("name"), body.get("settings"))

    @blp.arguments(ProjectDeleteSchema, required=False)
    @blp.response(204)
    @blp.doc(operationId="deleteProject", requestBody={"required": True})
    def delete(self, body, project_id):
        """Delete a project with its database and files; `confirm` must repeat the id"""
        services().projects.delete(project_id, (body or {}).get("confirm"))


@blp.route("/<project_id>/export")
class ProjectExport(MethodView):
    @blp.doc(responses={"200": {"description": "A tar.gz archive streamed as it is made: project.json, "
                                               "parts/<part>.jsonl, db/<collection>.jsonl and .indexes.json "
                                               "(canonical Extended JSON), files/<id> (file bytes), "
                                               "manifest.json last with each entry's SHA-256.",
                                "content": {"application/gzip": {"schema": {"type": "string",
                                                                            "format": "binary"}}}}})
    def get(self, project_id):
        """Export a project's collections, indexes, documents, users, files, keys and settings as a tar.gz"""
        chunks = services().transfer.export(project_id)
        return Response(chunks, mimetype="application/gzip", headers={
            "Content-Disposition": f'attachment; filename="{project_id}.baas.tar.gz"'})


@blp.route("/import")
class ProjectImport(MethodView):
    @raw_body
    @blp.arguments(ImportQuerySchema, location="query")
    @blp.doc(requestBody={"required": True, "content": {"application/gzip": {"schema": {"type": "string",
                                                                                        "format": "binary"}}}})
    @blp.response(201, ImportedSchema)
    @blp.doc(**extra_errors(409))
    def post(self, query):
        """Import a project archive made by export; a damaged or truncated archive is refused with nothing written"""
        svc = services()
        request.max_content_length = svc.config["projects"]["max_import_bytes"]
        return svc.transfer.import_archive(request.stream, query["project_id"], query["overwrite"])


@blp.route("/<project_id>/keys")
class Keys(MethodView):
    @blp.response(200, KeySchema(many=True))
    @blp.doc(operationId="listKeys")
    def get(self, project_id):
        """List a project's API keys (metadata only)"""
        return services().keys.list(project_id)

    @blp.arguments(KeyCreateSchema)
    @blp.response(201, KeyCreatedSchema)
    @blp.doc(operationId="createKey")
    def post(self, body, project_id):
        """Create an API key; the response holds the key itself, shown only this once"""
        doc, plaintext = services().keys.create(project_id, body["kind"], body.get("name"), body.get("scopes"),
                                                body.get("expires_at"))
        return {**doc, "key": plaintext}


@blp.route("/<project_id>/keys/<key_id>")
class Key(MethodView):
    @blp.response(200, KeySchema)
    @blp.doc(operationId="getKey")
    def get(self, project_id, key_id):
        """Show one key's metadata"""
        return services().keys.get(project_id, key_id)


@blp.route("/<project_id>/keys/<key_id>/revoke")
class RevokeKey(MethodView):
    @blp.response(200, KeySchema)
    @blp.doc(operationId="revokeKey", **extra_errors(409))
    def post(self, project_id, key_id):
        """Revoke a key; every server process refuses it within seconds"""
        return services().keys.revoke(project_id, key_id)


@blp.route("/<project_id>/keys/<key_id>/rotate")
class RotateKey(MethodView):
    @blp.arguments(KeyRotateSchema, required=False)
    @blp.response(201, KeyRotatedSchema)
    @blp.doc(operationId="rotateKey", **extra_errors(409))
    def post(self, body, project_id, key_id):
        """Replace a key; the old one keeps working for `grace_seconds`"""
        new, plaintext, old = services().keys.rotate(project_id, key_id, (body or {}).get("grace_seconds", 0))
        return {**new, "key": plaintext, "previous": old}
