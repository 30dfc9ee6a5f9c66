"""Schema pieces shared by every API."""
from marshmallow import Schema, fields


class StrictSchema(Schema):
    """Input schemas refuse unknown fields (marshmallow's default), so typos surface as 422 errors."""


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
