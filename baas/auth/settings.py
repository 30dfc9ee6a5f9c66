"""Per-project auth settings (project settings["auth"]) with their defaults."""
from __future__ import annotations

from marshmallow import fields, validate, validates_schema

from baas.errors import Invalid
from baas.schemas import JsonBoolean, JsonInteger, StrictSchema

PASSWORD_MIN_FLOOR = 8          # never fewer, whatever a project asks
PASSWORD_MAX_CEILING = 1024     # bounds the hashing work one request can ask for
# What the document promises link_base_url accepts: an http(s) URL of a host name, optional port and path.
HTTP_URL_PATTERN = r"^https?://[a-z0-9]+(\.[a-z0-9]+)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]+)*/?$"

DEFAULT_VERIFY_SUBJECT = "Confirm your email address for {{project}}"
DEFAULT_VERIFY_BODY = """Hello,

please confirm your email address {{email}} for {{project}} by opening this link:

{{link}}

The link works once and expires in {{expires_in}}. If you did not ask for it, ignore this mail.
"""
DEFAULT_RESET_SUBJECT = "Reset your password for {{project}}"
DEFAULT_RESET_BODY = """Hello,

someone asked to reset the password of {{email}} for {{project}}. To choose a new password, open this link:

{{link}}

The link works once and expires in {{expires_in}}. If you did not ask for it, ignore this mail; your password
stays unchanged.
"""

DEFAULTS = {
    "allow_signup": True,
    "allow_anonymous": True,
    "require_verified_email": False,
    "password_min_length": PASSWORD_MIN_FLOOR,
    "password_max_length": 256,
}

MAIL_DEFAULTS = {
    "sender": None,             # None: config mail.sender
    "link_base_url": None,      # None: config mail.link_base_url, then server.public_url
    "verify_subject": DEFAULT_VERIFY_SUBJECT,
    "verify_body": DEFAULT_VERIFY_BODY,
    "reset_subject": DEFAULT_RESET_SUBJECT,
    "reset_body": DEFAULT_RESET_BODY,
}


class AuthMailSettingsSchema(StrictSchema):
    sender = fields.String(validate=validate.Length(min=3, max=300),
                           metadata={"description": "From address, e.g. 'My App <no-reply@example.com>'."})
    link_base_url = fields.Url(require_tld=False, schemes={"http", "https"},
                               metadata={"format": "uri", "pattern": HTTP_URL_PATTERN,
                                         "example": "https://app.example.com",
                                         "description": "Base URL of your app's pages that receive the tokens: "
                                                        "<base>/verify-email?token=... and "
                                                        "<base>/reset-password?token=..."})
    verify_subject = fields.String(validate=validate.Length(min=1, max=200))
    verify_body = fields.String(validate=validate.Length(min=1, max=20_000),
                                metadata={"description": "Placeholders: {{link}}, {{token}}, {{email}}, "
                                                         "{{project}}, {{hours}} (a number), {{expires_in}} "
                                                         "('1 hour', '24 hours')."})
    reset_subject = fields.String(validate=validate.Length(min=1, max=200))
    reset_body = fields.String(validate=validate.Length(min=1, max=20_000))


class AuthSettingsSchema(StrictSchema):
    allow_signup = JsonBoolean(metadata={"description": "Anyone with the client key may sign up (default true)."})
    allow_anonymous = JsonBoolean(metadata={"description": "POST /v1/auth/anonymous is allowed (default true)."})
    require_verified_email = JsonBoolean(metadata={"description": "Log-in needs a confirmed email address "
                                                                     "(default false)."})
    password_min_length = JsonInteger(validate=validate.Range(min=PASSWORD_MIN_FLOOR, max=PASSWORD_MAX_CEILING))
    password_max_length = JsonInteger(validate=validate.Range(min=PASSWORD_MIN_FLOOR, max=PASSWORD_MAX_CEILING))
    mail = fields.Nested(AuthMailSettingsSchema)

    @validates_schema
    def _lengths(self, data, **kwargs):
        low = data.get("password_min_length", DEFAULTS["password_min_length"])
        high = data.get("password_max_length", DEFAULTS["password_max_length"])
        if low > high:
            # A rule between fields, which no JSON Schema in the OpenAPI document states: a 400 like the other
            # such rules, so that 422 always means "does not match the documented schema".
            raise Invalid("password_min_length must not exceed password_max_length.",
                          errors={"password_min_length": ["Greater than password_max_length."]})


def effective(project_settings: dict | None) -> dict:
    """The project's auth settings over the defaults."""
    given = (project_settings or {}).get("auth") or {}
    merged = {**DEFAULTS, **{k: v for k, v in given.items() if k != "mail"}}
    merged["mail"] = {**MAIL_DEFAULTS, **(given.get("mail") or {})}
    return merged
