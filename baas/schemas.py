"""Schema pieces shared by every API."""
from marshmallow import Schema, ValidationError, fields, pre_load


class StrictSchema(Schema):
    """Input schemas refuse unknown fields (marshmallow's default), so typos surface as 422 errors.

    `openapi_extra` is merged into the schema's OpenAPI component (baas.openapi), for the constraints on the
    whole object that marshmallow fields cannot express.
    """

    openapi_extra: dict = {}


class NonEmptySchema(StrictSchema):
    """A change (PATCH) body: an empty object would change nothing, so it is refused rather than accepted."""

    openapi_extra = {"minProperties": 1}

    @pre_load
    def _not_empty(self, data, **kwargs):
        if isinstance(data, dict) and not data:
            raise ValidationError("Send at least one field to change.", field_name="_schema")
        return data


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
