"""Request and response shapes of the auth and users APIs."""
from marshmallow import Schema, fields, validate

from baas.auth.service import ROLE_PATTERN
from baas.auth.settings import DEFAULTS, PASSWORD_MAX_CEILING, PASSWORD_MIN_FLOOR
from baas.schemas import JsonBoolean, NonEmptySchema, StrictSchema, UtcDateTime

# Length checks here only bound the work; the project's policy (baas.auth.passwords) decides the rest.
_password = dict(validate=validate.Length(min=1, max=PASSWORD_MAX_CEILING))
# A password being set: the document states the default policy; a project may allow up to PASSWORD_MAX_CEILING.
_new_password = dict(validate=validate.Length(min=1, max=PASSWORD_MAX_CEILING),
                     metadata={"minLength": PASSWORD_MIN_FLOOR, "maxLength": DEFAULTS["password_max_length"],
                               "pattern": r"\S",
                               "description": "The project's policy applies: auth.password_min_length (at least "
                                              f"{PASSWORD_MIN_FLOOR}) to auth.password_max_length (default "
                                              f"{DEFAULTS['password_max_length']}); not only spaces."})
# The service normalises and checks addresses (at most 254 characters) and answers 400 naming the field.
_email = dict(validate=validate.Length(min=1, max=320),
              metadata={"example": "ada@example.com", "format": "email", "maxLength": 254})
_token = dict(validate=validate.Length(min=1, max=200))


class UserSchema(Schema):
    id = fields.String(attribute="_id")
    email = fields.String(allow_none=True)
    email_verified = JsonBoolean()
    anonymous = JsonBoolean()
    roles = fields.List(fields.String())
    disabled = JsonBoolean()
    data = fields.Dict(metadata={"description": "Custom profile data."})
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
    last_login_at = UtcDateTime(allow_none=True)


class SessionSchema(Schema):
    user = fields.Nested(UserSchema)
    access_token = fields.String(metadata={"description": "JWT for 'Authorization: Bearer'."})
    refresh_token = fields.String(metadata={"description": "Opaque, single-use; exchange at /v1/auth/refresh."})
    token_type = fields.String()
    expires_in = fields.Integer(metadata={"description": "Seconds until the access token expires."})


class SignupSchema(StrictSchema):
    email = fields.String(required=True, **_email)
    password = fields.String(required=True, **_new_password)
    data = fields.Dict(load_default=None, metadata={"description": "Custom profile data (JSON object)."})


class CredentialsSchema(StrictSchema):
    email = fields.String(required=True, **_email)
    password = fields.String(required=True, **_password)


class RefreshSchema(StrictSchema):
    refresh_token = fields.String(required=True, **_token)


class MeUpdateSchema(NonEmptySchema):
    data = fields.Dict(load_default=None, metadata={"description": "Merged key by key; null removes a key."})
    email = fields.String(load_default=None, **_email)
    password = fields.String(load_default=None, metadata={"description": "Current password; needed to change "
                                                                         "the email."}, **_password)


class PasswordChangeSchema(StrictSchema):
    old = fields.String(required=True, metadata={"description": "Current password."}, **_password)
    new = fields.String(required=True, **_new_password)


class PasswordSchema(StrictSchema):
    password = fields.String(load_default=None, **_password)


class EmailOptionalSchema(StrictSchema):
    email = fields.String(load_default=None, **_email)


class EmailSchema(StrictSchema):
    email = fields.String(required=True, **_email)


class TokenSchema(StrictSchema):
    token = fields.String(required=True, **_token)


class ResetConfirmSchema(StrictSchema):
    token = fields.String(required=True, **_token)
    password = fields.String(required=True, **_new_password)


class AcceptedSchema(Schema):
    message = fields.String()


class UserOnlySchema(Schema):
    user = fields.Nested(UserSchema)


class UserListQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    after = fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                          metadata={"description": "Cursor: the `next` value of the previous page."})
    email = fields.String(load_default=None, **_email)


class SessionsRevokedSchema(Schema):
    revoked = fields.Integer(metadata={"description": "Sessions that were still open and are now revoked."})


class UserListSchema(Schema):
    users = fields.List(fields.Nested(UserSchema))
    next = fields.String(allow_none=True, metadata={"description": "Pass as `after` for the next page."})


_role = fields.String(validate=validate.Length(min=1, max=64),
                      metadata={"pattern": ROLE_PATTERN.pattern, "example": "editor"})


class UserCreateSchema(StrictSchema):
    email = fields.String(required=True, **_email)
    password = fields.String(load_default=None, validate=_new_password["validate"],
                             metadata={**_new_password["metadata"],
                                       "description": "Optional; without one the user sets it through a password "
                                                      "reset. " + _new_password["metadata"]["description"]})
    roles = fields.List(_role, load_default=None)
    data = fields.Dict(load_default=None)
    email_verified = JsonBoolean(load_default=False)
    disabled = JsonBoolean(load_default=False)


class UserUpdateSchema(NonEmptySchema):
    roles = fields.List(_role, load_default=None)
    disabled = JsonBoolean(load_default=None)
    email_verified = JsonBoolean(load_default=None)
    data = fields.Dict(load_default=None, metadata={"description": "Replaces the profile data."})
