"""Schemas of the files API: bodies it loads, and what the OpenAPI document says it returns."""
import re

from marshmallow import Schema, fields, validate

from baas.files.settings import FileRulesSchema, FileSettingsSchema
from baas.schemas import JsonBoolean, JsonInteger, StrictSchema, UtcDateTime

FILE_ID = re.compile(r"^[0-9a-f]{24}$")      # an ObjectId's hex (service.upload and friends)
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")    # secrets.token_hex(UPLOAD_ID_BYTES): tus and direct uploads


class FileSchema(Schema):
    _id = fields.String(data_key="_id")
    name = fields.String(metadata={"description": "Display name, sanitised; never a storage path."})
    size = fields.Integer()
    content_type = fields.String(metadata={"description": "Sniffed from the bytes, not taken from the client."})
    sha256 = fields.String(allow_none=True, metadata={
        "description": "SHA-256 of the bytes (hex); null while sha256_state is pending."})
    sha256_state = fields.String(validate=validate.OneOf(["pending", "done"]), metadata={
        "description": "done: sha256 is set. pending: the server did not see the bytes arrive (direct transfer, "
                       "a tus upload whose chunks reached several server processes) and background work is "
                       "hashing them; the file is readable meanwhile."})
    public = fields.Boolean(metadata={"description": "Readable with the client key alone."})
    metadata = fields.Dict()
    _owner = fields.String(data_key="_owner", allow_none=True)
    _created = UtcDateTime(data_key="_created")
    _updated = UtcDateTime(data_key="_updated")
    _rev = fields.String(data_key="_rev", metadata={"description": "Revision; the ETag of the metadata."})


class FilePageSchema(Schema):
    items = fields.List(fields.Nested(FileSchema))
    next_cursor = fields.String(allow_none=True)


class FileUpdateSchema(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=1000))
    metadata = fields.Dict()
    public = JsonBoolean()
    _owner = fields.String(data_key="_owner", allow_none=True, validate=validate.Length(min=1, max=128),
                           metadata={"description": "Server key only: give the file to another user id (null: "
                                                    "to nobody)."})


class DirectUploadCreateSchema(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=1000))
    size = JsonInteger(validate=validate.Range(min=0), metadata={"description": "Expected size; checked against "
                                                                                   "the project's limit."})
    content_type = fields.String(validate=validate.Length(min=3, max=200),
                                 metadata={"description": "Send this Content-Type with the PUT."})
    public = JsonBoolean()
    metadata = fields.Dict()


class DirectUploadSchema(Schema):
    id = fields.String(metadata={"description": "The pending upload; complete it with POST .../{id}/complete."})
    file_id = fields.String(metadata={"description": "The id the file will have."})
    url = fields.String(metadata={"description": "Presigned URL to PUT the bytes to."})
    method = fields.String()
    headers = fields.Dict(metadata={"description": "Headers to send with the PUT."})
    expires_at = UtcDateTime()


class UsageSchema(Schema):
    project_id = fields.String()
    bytes = fields.Integer()
    count = fields.Integer()


class FileSettingsOutSchema(Schema):
    max_file_bytes = fields.Integer()
    allowed_types = fields.List(fields.String(), allow_none=True)
    rules = fields.Nested(FileRulesSchema)
    presigned_downloads = fields.Boolean()
    delete_with_user = fields.Boolean()


__all__ = ["FileSchema", "FilePageSchema", "FileUpdateSchema", "DirectUploadCreateSchema", "DirectUploadSchema",
           "UsageSchema", "FileSettingsSchema", "FileSettingsOutSchema"]
