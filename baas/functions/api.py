"""POST /v1/functions/{name}; each registered function gets its own operation in the OpenAPI document."""
import orjson
from flask import Blueprint, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from baas.openapi import KEY_ONLY, USER_REQUIRED
from baas.context import current_principal, services
from baas.errors import Invalid
from baas.schemas import StrictSchema

ERROR_REF = {"$ref": "#/components/schemas/Error"}

bp = Blueprint("functions", __name__, url_prefix="/v1/functions")


@bp.post("/<name>")
def call_function(name):
    principal = current_principal()
    data = request.get_data(cache=False)  # size and content type were checked before the view (baas.http)
    try:
        args = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError as exc:  # NaN, Infinity and absurd nesting included
        raise Invalid(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise Invalid("Send the function's arguments as a JSON object.")
    return jsonify({"result": services().extra["functions"].call(principal, name, args)})


admin_blp = ApiBlueprint("admin-functions", __name__, url_prefix="/admin/v1/functions",
                         description="Cloud functions of the loaded plugins (platform admin token).")


class FunctionSchema(Schema):
    name = fields.String()
    plugin = fields.String()
    access = fields.String(metadata={"description": "public, authenticated, role or server"})
    roles = fields.List(fields.String())
    rate_limit = fields.String(allow_none=True)
    description = fields.String()
    input_schema = fields.Dict(allow_none=True)


class FunctionQuerySchema(StrictSchema):
    project = fields.String(load_default=None, metadata={"description": "Only functions enabled in this project."})


@admin_blp.route("")
class Functions(MethodView):
    @admin_blp.arguments(FunctionQuerySchema, location="query")
    @admin_blp.response(200, FunctionSchema(many=True))
    def get(self, query):
        """List cloud functions"""
        if query["project"]:
            services().projects.info(query["project"])
        return services().extra["functions"].list(query["project"])


ACCESS_TEXT = {
    "public": "Any API key of the project.",
    "authenticated": "A signed-in user (Authorization: Bearer), or a server key.",
    "role": "A signed-in user with one of the roles {roles}, or a server key.",
    "server": "Server keys only.",
}


def document(api, functions: dict) -> None:
    from baas.functions.service import input_schema

    for spec in sorted(functions.values(), key=lambda f: f.name):
        body_schema = input_schema(spec)
        if body_schema is None and spec.schema is not None:
            body_schema = spec.schema  # a marshmallow schema: apispec turns it into a component
        security = KEY_ONLY if spec.access in ("public", "server") else USER_REQUIRED
        responses = {
            "200": {"description": "The function's result.",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {"result": {}},
                                                                "required": ["result"]}}}},
            "400": {"description": "The arguments do not match the function's input schema.",
                    "content": {"application/json": {"schema": ERROR_REF}}},
            "401": {"description": "A signed-in user is needed.", "content": {"application/json": {"schema": ERROR_REF}}},
            "403": {"description": "The caller may not call this function.",
                    "content": {"application/json": {"schema": ERROR_REF}}},
            "404": {"description": "The function is not enabled in this project.",
                    "content": {"application/json": {"schema": ERROR_REF}}},
            "422": {"description": "The function refused (Rejected).",
                    "content": {"application/json": {"schema": ERROR_REF}}},
            "500": {"description": "The function failed; details are in the server log.",
                    "content": {"application/json": {"schema": ERROR_REF}}},
        }
        if spec.rate_limit:
            responses["429"] = {"description": f"More than {spec.rate_limit} calls per caller.",
                                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                                "content": {"application/json": {"schema": ERROR_REF}}}
        operation = {
            "tags": ["functions"], "operationId": f"function_{spec.name.replace('.', '_').replace('-', '_')}",
            "summary": (spec.description.splitlines() or [f"Call {spec.name}"])[0],
            "description": f"Plugin `{spec.plugin}`. Who may call: " + ACCESS_TEXT[spec.access].format(
                roles=", ".join(spec.roles)),
            "security": security, "responses": responses,
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": body_schema if body_schema is not None else {"type": "object"}}}},
        }
        # flask-smorest's spec plugin derives paths from werkzeug rules: give it the function's own path as one.
        api.spec.path(rule=Rule(f"/v1/functions/{spec.name}"), operations={"post": operation})
