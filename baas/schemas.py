"""Schema pieces shared by every API."""
from marshmallow import Schema, ValidationError, fields


class StrictSchema(Schema):
    """Input schemas refuse unknown fields (marshmallow's default), so typos surface as 422 errors.

    `openapi_extra` is merged into the schema's OpenAPI component (baas.openapi), for the constraints on the
    whole object that marshmallow fields cannot express.
    """

    openapi_extra: dict = {}


class NonEmptySchema(StrictSchema):
    """A PATCH body: the request path refuses an empty one (baas.http), and the document says so."""

    openapi_extra = {"minProperties": 1}


class JsonBoolean(fields.Boolean):
    """true or false only: marshmallow's Boolean also takes 0, 1, "yes", "on", ... which the document's
    `type: boolean` does not allow, so a client generated from it and a hand-written one would disagree."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Not a boolean (true or false).")
        return value


class JsonInteger(fields.Integer):
    """A JSON integer only (not "5", not 5.5), as the document's `type: integer` says."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class ErrorSchema(Schema):
    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    errors = fields.Dict()


class UtcDateTime(fields.DateTime):
    """Serialises like every other date baas returns (baas.util.iso_utc)."""

    def _serialize(self, value, attr, obj, **kwargs):
        from baas.util import iso_utc

        return None if value is None else iso_utc(value)
