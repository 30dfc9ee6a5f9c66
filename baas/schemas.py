"""Schema pieces shared by every API."""
from marshmallow import Schema, fields


class StrictSchema(Schema):
    """Input schemas refuse unknown fields (marshmallow's default), so typos surface as 422 errors."""


class ErrorSchema(Schema):
    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    errors = fields.Dict()
