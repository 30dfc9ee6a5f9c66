"""/v1/auth: sign-up, log-in, sessions and the signed-in user's own account (client or server key)."""
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from baas.auth.schemas import (AcceptedSchema, CredentialsSchema, EmailOptionalSchema, EmailSchema, MeUpdateSchema,
                               PasswordChangeSchema, PasswordSchema, RefreshSchema, ResetConfirmSchema,
                               SessionSchema, SignupSchema, TokenSchema, UserOnlySchema, UserSchema)
from baas.context import current_principal, services
from baas.openapi import USER_REQUIRED, extra_errors
from baas.ratelimit import client_ip

blp = Blueprint("auth", __name__, url_prefix="/v1/auth",
                description="End users of a project: sign-up, log-in, tokens and their own account. Send the "
                            "project's client key in X-API-Key; signed-in calls also send "
                            "'Authorization: Bearer <access token>'.")

ACCEPTED = {"message": "If the address belongs to an account, a mail is on its way."}


def _caller():
    """(auth service, project, client ip, user agent) for this request."""
    principal = current_principal()
    principal.require_scope("auth")
    svc = services()
    ip = client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"),
                   svc.config["server"]["trusted_proxies"])
    return svc.auth, principal, ip, request.headers.get("User-Agent", "")


@blp.route("/signup")
class Signup(MethodView):
    @blp.arguments(SignupSchema)
    @blp.response(201, SessionSchema)
    @blp.doc(operationId="signUp", **extra_errors(409))
    def post(self, body):
        """Create an account; answers with tokens (or only the user when the email must be verified first)"""
        auth, principal, ip, agent = _caller()
        return auth.signup(principal.project, body["email"], body["password"], body["data"], ip, agent)


@blp.route("/anonymous")
class Anonymous(MethodView):
    @blp.response(201, SessionSchema)
    @blp.doc(operationId="signInAnonymously")
    def post(self):
        """Create an anonymous user (no email) and sign it in"""
        auth, principal, ip, agent = _caller()
        return auth.anonymous(principal.project, ip, agent)


@blp.route("/anonymous/upgrade")
class AnonymousUpgrade(MethodView):
    @blp.arguments(CredentialsSchema)
    @blp.response(200, SessionSchema)
    @blp.doc(operationId="upgradeAnonymousUser", security=USER_REQUIRED, **extra_errors(409))
    def post(self, body):
        """Give the signed-in anonymous user an email and password; it keeps its id and data"""
        auth, principal, ip, agent = _caller()
        return auth.upgrade_anonymous(principal.project, principal.require_user(), body["email"], body["password"],
                                      ip, agent)


@blp.route("/login")
class Login(MethodView):
    @blp.arguments(CredentialsSchema)
    @blp.response(200, SessionSchema)
    @blp.doc(operationId="logIn")
    def post(self, body):
        """Log in with email and password"""
        auth, principal, ip, agent = _caller()
        return auth.login(principal.project, body["email"], body["password"], ip, agent)


@blp.route("/refresh")
class Refresh(MethodView):
    @blp.arguments(RefreshSchema)
    @blp.response(200, SessionSchema)
    @blp.doc(operationId="refreshSession")
    def post(self, body):
        """Exchange a refresh token (single-use) for a new token pair"""
        auth, principal, ip, agent = _caller()
        return auth.refresh(principal.project, body["refresh_token"], ip, agent)


@blp.route("/logout")
class Logout(MethodView):
    @blp.response(204)
    @blp.doc(operationId="logOut", security=USER_REQUIRED)
    def post(self):
        """Sign out this session: its refresh token and this access token stop working"""
        auth, principal, _, _ = _caller()
        auth.logout(principal.project, principal.require_user())


@blp.route("/logout-all")
class LogoutAll(MethodView):
    @blp.response(204)
    @blp.doc(operationId="logOutEverywhere", security=USER_REQUIRED)
    def post(self):
        """Sign out every session of the user"""
        auth, principal, _, _ = _caller()
        auth.logout_all(principal.project, principal.require_user())


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, UserSchema)
    @blp.doc(operationId="getMe", security=USER_REQUIRED)
    def get(self):
        """The signed-in user"""
        auth, principal, _, _ = _caller()
        return auth.me(principal.project, principal.require_user())

    @blp.arguments(MeUpdateSchema)
    @blp.response(200, UserSchema)
    @blp.doc(operationId="updateMe", security=USER_REQUIRED, **extra_errors(409))
    def patch(self, body):
        """Change profile data, or the email (with the password; the new address needs verifying)"""
        auth, principal, ip, _ = _caller()
        return auth.update_me(principal.project, principal.require_user(), body["data"], body["email"],
                              body["password"], ip)

    @blp.arguments(PasswordSchema, required=False)
    @blp.response(204)
    @blp.doc(operationId="deleteMe", security=USER_REQUIRED)
    def delete(self, body):
        """Delete the signed-in user's account (needs the password, unless the user is anonymous)"""
        auth, principal, ip, _ = _caller()
        auth.delete_me(principal.project, principal.require_user(), (body or {}).get("password"), ip)


@blp.route("/me/password")
class MePassword(MethodView):
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    @blp.doc(operationId="changeMyPassword", security=USER_REQUIRED, **extra_errors(409))
    def post(self, body):
        """Change the password; every other session is signed out"""
        auth, principal, ip, _ = _caller()
        auth.change_password(principal.project, principal.require_user(), body["old"], body["new"], ip)


@blp.route("/verify-email/request")
class VerifyRequest(MethodView):
    @blp.arguments(EmailOptionalSchema, required=False)
    @blp.response(202, AcceptedSchema)
    @blp.doc(operationId="requestEmailVerification")
    def post(self, body):
        """Mail a verification link to the signed-in user, or to `email` (same answer for unknown addresses)"""
        auth, principal, ip, _ = _caller()
        auth.request_verification(principal.project, principal.user, (body or {}).get("email"), ip)
        return ACCEPTED


@blp.route("/verify-email/confirm")
class VerifyConfirm(MethodView):
    @blp.arguments(TokenSchema)
    @blp.response(200, UserOnlySchema)
    @blp.doc(operationId="confirmEmailVerification")
    def post(self, body):
        """Confirm an email address with the token from the mail"""
        auth, principal, ip, _ = _caller()
        return {"user": auth.confirm_verification(principal.project, body["token"], ip)}


@blp.route("/password-reset/request")
class ResetRequest(MethodView):
    @blp.arguments(EmailSchema)
    @blp.response(202, AcceptedSchema)
    @blp.doc(operationId="requestPasswordReset")
    def post(self, body):
        """Mail a password-reset link (same answer whether or not the address has an account)"""
        auth, principal, ip, _ = _caller()
        auth.request_password_reset(principal.project, body["email"], ip)
        return ACCEPTED


@blp.route("/password-reset/confirm")
class ResetConfirm(MethodView):
    @blp.arguments(ResetConfirmSchema)
    @blp.response(204)
    @blp.doc(operationId="confirmPasswordReset")
    def post(self, body):
        """Set a new password with the token from the mail; every session is signed out"""
        auth, principal, ip, _ = _caller()
        auth.confirm_password_reset(principal.project, body["token"], body["password"], ip)
