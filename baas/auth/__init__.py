"""End-user auth of each project: accounts, JWT access tokens, rotating refresh tokens, mail, abuse limits."""
from baas.plugins.hookspecs import hookimpl


def init_app(app, api) -> None:
    from baas.auth import api as auth_api
    from baas.auth import tokens, users_api
    from baas.auth.passwords import Passwords
    from baas.auth.service import AuthService
    from baas.mail import Mailer
    from baas.ratelimit import RateLimiter

    svc = app.extensions["baas"]
    config = svc.config
    tokens.configure(app, config)
    svc.limiter = RateLimiter.from_config(svc.mongo, config)
    mailer = Mailer.from_config(config)
    svc.extra["mailer"] = mailer
    svc.auth = AuthService(svc.mongo, svc.hooks, Passwords.from_config(config),
                           tokens.AccessTokens(app, config["jwt"]["access_token_minutes"]), mailer, svc.limiter,
                           config)
    svc.hooks.register(_ProjectListener(svc.auth), name="baas.auth")
    api.register_blueprint(auth_api.blp)
    api.register_blueprint(users_api.client_blp)
    api.register_blueprint(users_api.admin_blp)


class _ProjectListener:
    """A project id can be reused after deletion; its new database needs the auth indexes again."""

    def __init__(self, auth):
        self.auth = auth

    @hookimpl(trylast=True)  # core behaviour runs after the plugins' implementations
    def baas_project_deleted(self, project_id):
        self.auth.forget_project(project_id)
