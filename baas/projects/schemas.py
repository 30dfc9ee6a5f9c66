from marshmallow import Schema, fields, validate

from baas.auth.settings import AuthSettingsSchema
from baas.files.settings import FileSettingsSchema
from baas.principal import KEY_KINDS, SCOPES
from baas.schemas import JsonBoolean, JsonInteger, NonEmptySchema, StrictSchema, UtcDateTime
from baas.storage.mongo import PROJECT_ID_PATTERN


class ProjectSettingsSchema(StrictSchema):
    cors_origins = fields.List(fields.String(validate=validate.Length(min=1, max=300)),
                               validate=validate.Length(max=100),
                               metadata={"description": "Browser origins allowed to call this project's API, "
                                                        "e.g. https://app.example.com, or '*'."})
    strict_collections = JsonBoolean(metadata={"description": "Only collections defined by an admin accept "
                                                                 "documents."})
    open_new_collections = JsonBoolean(metadata={"description": "New collections start owner-writable and "
                                                                   "readable by signed-in users instead of "
                                                                   "server-keys-only."})
    auth = fields.Nested(AuthSettingsSchema, metadata={"description": "Auth settings; see docs/auth.md."})
    files = fields.Nested(FileSettingsSchema, metadata={"description": "File storage settings; see docs/files.md."})


class ProjectCreateSchema(StrictSchema):
    # The service checks the pattern (400 naming the rule); the document states it.
    id = fields.String(required=True,
                       metadata={"pattern": PROJECT_ID_PATTERN.pattern, "example": "my-app", "description": "3-40 of a-z, 0-9 and '-'; starts with a "
                                                                     "letter, ends with a letter or digit."})
    name = fields.String(validate=validate.Length(min=1, max=200), metadata={"example": "My App"})
    settings = fields.Nested(ProjectSettingsSchema)


class ProjectUpdateSchema(NonEmptySchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    settings = fields.Nested(ProjectSettingsSchema)


class ProjectDeleteSchema(StrictSchema):
    # Loaded as optional so that the service answers a missing confirmation with a 400 that says why; the
    # document states it as required, which it is.
    openapi_extra = {"required": ["confirm"]}
    confirm = fields.String(load_default=None, metadata={"description": "The project id, repeated.",
                                                         "example": "my-app"})


class ProjectSchema(Schema):
    id = fields.String(attribute="_id")
    name = fields.String()
    settings = fields.Nested(ProjectSettingsSchema)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class KeyCreateSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(KEY_KINDS))
    name = fields.String(validate=validate.Length(min=1, max=200))
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), validate=validate.Length(max=len(SCOPES)))
    expires_at = fields.AwareDateTime(default_timezone=None, allow_none=True,
                                      metadata={"description": "ISO 8601 with a time zone; must be in the "
                                                               "future."})


class KeyRotateSchema(StrictSchema):
    grace_seconds = JsonInteger(load_default=0, validate=validate.Range(min=0, max=30 * 86400),
                                   metadata={"description": "How long the old key keeps working."})


class KeySchema(Schema):
    id = fields.String(attribute="_id")
    project_id = fields.String()
    kind = fields.String()
    name = fields.String()
    scopes = fields.List(fields.String())
    prefix = fields.String()
    created_at = UtcDateTime()
    expires_at = UtcDateTime(allow_none=True)
    revoked_at = UtcDateTime(allow_none=True)
    rotated_from = fields.String(allow_none=True)
    rotated_to = fields.String(allow_none=True)
    status = fields.Method("_status")

    def _status(self, doc):
        from baas.util import as_utc, utcnow

        if doc.get("revoked_at"):
            return "revoked"
        if doc.get("expires_at") and as_utc(doc["expires_at"]) <= utcnow():
            return "expired"
        return "active"


class CallerKeySchema(Schema):
    id = fields.String()
    kind = fields.String()
    scopes = fields.List(fields.String(), metadata={"description": "Empty: every scope."})


class CallerProjectSchema(Schema):
    id = fields.String()
    name = fields.String()
    key = fields.Nested(CallerKeySchema)


class KeyCreatedSchema(KeySchema):
    key = fields.String(metadata={"description": "The key itself; shown only in this response."})


class KeyRotatedSchema(KeyCreatedSchema):
    previous = fields.Nested(KeySchema)


class ImportQuerySchema(StrictSchema):
    project_id = fields.String(load_default=None, metadata={"description": "Import under this id instead of the "
                                                                          "archive's (its keys are not imported)."})
    overwrite = fields.Boolean(load_default=False, metadata={
        "description": "Replace the project if it exists: the archive is imported beside it, then the project is "
                       "switched to the new data in one step and the old data is removed."})


class ImportedSchema(Schema):
    project_id = fields.String()
    collections = fields.Dict(keys=fields.String(), values=fields.Integer(),
                              metadata={"description": "Documents imported per stored collection."})
    files = fields.Integer(metadata={"description": "Files imported (their bytes checked against their SHA-256)."})
    file_bytes = fields.Integer(metadata={"description": "Bytes of the imported files."})
    keys = fields.Integer(metadata={"description": "API keys imported (they keep working)."})
    parts = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Records imported per archive part (keys, plugin_settings, push_vapid_keys, ...)."})
    overwritten = fields.Boolean(metadata={"description": "True when an existing project was replaced."})
