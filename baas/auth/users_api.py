"""User administration: /v1/users with a server key, /admin/v1/projects/<id>/users with the admin token."""
from flask.views import MethodView
from flask_smorest import Blueprint

from baas.auth.schemas import (SessionsRevokedSchema, UserCreateSchema, UserListQuerySchema, UserListSchema, UserSchema,
                               UserUpdateSchema)
from baas.context import current_principal, services
from baas.openapi import KEY_ONLY, extra_errors

client_blp = Blueprint("users", __name__, url_prefix="/v1/users",
                       description="A project's users, for backends holding a server key.")
admin_blp = Blueprint("admin-users", __name__, url_prefix="/admin/v1/projects/<project_id>/users",
                      description="A project's users (platform admin token).")


def _server_project(scope: str):
    principal = current_principal()
    principal.require_server()
    principal.require_scope(scope)
    return principal.project


def _admin_project(project_id: str):
    return services().projects.info(project_id)


def _list(project_id: str, query: dict) -> dict:
    users, next_cursor = services().auth.list_users(project_id, query["limit"], query["after"], query["email"])
    return {"users": users, "next": next_cursor}


def _create(project, body: dict) -> dict:
    return services().auth.create_user(project, body["email"], body["password"], body["roles"], body["data"],
                                       body["email_verified"], body["disabled"])


def _update(project_id: str, user_id: str, body: dict) -> dict:
    return services().auth.update_user(project_id, user_id, body["roles"], body["disabled"],
                                       body["email_verified"], body["data"])


@client_blp.route("")
class Users(MethodView):
    @client_blp.arguments(UserListQuerySchema, location="query")
    @client_blp.response(200, UserListSchema)
    @client_blp.doc(operationId="listUsers", security=KEY_ONLY)
    def get(self, query):
        """List users in id order, one page at a time"""
        return _list(_server_project("users:read").id, query)

    @client_blp.arguments(UserCreateSchema)
    @client_blp.response(201, UserSchema)
    @client_blp.doc(operationId="createUser", security=KEY_ONLY, **extra_errors(409))
    def post(self, body):
        """Create a user"""
        return _create(_server_project("users:write"), body)


@client_blp.route("/<user_id>")
class User(MethodView):
    @client_blp.response(200, UserSchema)
    @client_blp.doc(operationId="getUser", security=KEY_ONLY)
    def get(self, user_id):
        """Show a user"""
        return services().auth.get_user(_server_project("users:read").id, user_id)

    @client_blp.arguments(UserUpdateSchema)
    @client_blp.response(200, UserSchema)
    @client_blp.doc(operationId="updateUser", security=KEY_ONLY)
    def patch(self, body, user_id):
        """Change a user's roles, disabled flag, verified flag or data; disabling signs it out everywhere"""
        return _update(_server_project("users:write").id, user_id, body)

    @client_blp.response(204)
    @client_blp.doc(operationId="deleteUser", security=KEY_ONLY)
    def delete(self, user_id):
        """Delete a user; its tokens stop working"""
        services().auth.delete_user(_server_project("users:write").id, user_id)


@admin_blp.route("")
class AdminUsers(MethodView):
    @admin_blp.arguments(UserListQuerySchema, location="query")
    @admin_blp.response(200, UserListSchema)
    @admin_blp.doc(operationId="adminListUsers")
    def get(self, query, project_id):
        """List a project's users"""
        return _list(_admin_project(project_id).id, query)

    @admin_blp.arguments(UserCreateSchema)
    @admin_blp.response(201, UserSchema)
    @admin_blp.doc(operationId="adminCreateUser", **extra_errors(409))
    def post(self, body, project_id):
        """Create a user in a project"""
        return _create(_admin_project(project_id), body)


@admin_blp.route("/<user_id>")
class AdminUser(MethodView):
    @admin_blp.response(200, UserSchema)
    @admin_blp.doc(operationId="adminGetUser")
    def get(self, project_id, user_id):
        """Show a user"""
        return services().auth.get_user(_admin_project(project_id).id, user_id)

    @admin_blp.arguments(UserUpdateSchema)
    @admin_blp.response(200, UserSchema)
    @admin_blp.doc(operationId="adminUpdateUser")
    def patch(self, body, project_id, user_id):
        """Change a user's roles, disabled flag, verified flag or data"""
        return _update(_admin_project(project_id).id, user_id, body)

    @admin_blp.response(204)
    @admin_blp.doc(operationId="adminDeleteUser")
    def delete(self, project_id, user_id):
        """Delete a user"""
        services().auth.delete_user(_admin_project(project_id).id, user_id)


@admin_blp.route("/<user_id>/revoke-sessions")
class AdminUserSessions(MethodView):
    @admin_blp.response(200, SessionsRevokedSchema)
    def post(self, project_id, user_id):
        """Sign a user out everywhere: its refresh and access tokens stop working within seconds"""
        return {"revoked": services().auth.revoke_user_sessions(_admin_project(project_id).id, user_id)}
