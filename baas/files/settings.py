"""Per-project file settings (project settings["files"]), validated by the admin API and merged over config."""
from __future__ import annotations

from dataclasses import dataclass

from marshmallow import fields, validate, validates

from baas import rules as rules_module
from baas.errors import Invalid
from baas.schemas import JsonBoolean, JsonInteger, StrictSchema

FILE_ACTIONS = ("list", "read", "create", "update", "delete")
MAX_FILE_BYTES_CEILING = 5 * 1024 ** 4   # S3's largest object


def check_file_rules(value) -> dict:
    if not isinstance(value, dict):
        raise Invalid("'rules' must be an object mapping actions to rules.", errors={"rules": ["Must be an object."]})
    unknown = sorted(set(value) - set(FILE_ACTIONS))
    if unknown:
        raise Invalid(f"Unknown file action(s): {', '.join(unknown)}; actions are {', '.join(FILE_ACTIONS)}.",
                      errors={"rules": {a: ["Unknown action."] for a in unknown}})
    checked = rules_module.check_rules(value)
    return {action: checked[action] for action in FILE_ACTIONS}


class FileRulesSchema(StrictSchema):
    """One rule per action, as for collections ("public", "authenticated", "owner", a role or filter object)."""
    list = fields.Raw(allow_none=True)
    read = fields.Raw(allow_none=True)
    create = fields.Raw(allow_none=True)
    update = fields.Raw(allow_none=True)
    delete = fields.Raw(allow_none=True)


class FileSettingsSchema(StrictSchema):
    max_file_bytes = JsonInteger(validate=validate.Range(min=1, max=MAX_FILE_BYTES_CEILING),
                                    metadata={"description": "Largest file in bytes (default: config "
                                                             "files.max_file_bytes)."})
    allowed_types = fields.List(fields.String(validate=validate.Length(min=3, max=100)), allow_none=True,
                                validate=validate.Length(max=100),
                                metadata={"description": "Content types accepted, as patterns like image/*; null: "
                                                         "everything but config files.blocked_types."})
    rules = fields.Nested(FileRulesSchema, metadata={
        "description": "File access rules per action (list, read, create, update, delete), as for collections. "
                       "Default: server keys only."})
    presigned_downloads = JsonBoolean(metadata={"description": "On S3, downloads answer 302 to a short-lived "
                                                                  "presigned URL instead of streaming."})
    delete_with_user = JsonBoolean(metadata={"description": "Deleting a user deletes the files they own."})

    @validates("rules")
    def _rules(self, value, **kwargs):
        # A rule's meaning is checked as for collections, and refused the same way: 400 naming the action.
        check_file_rules(value)


@dataclass(frozen=True)
class FileSettings:
    max_file_bytes: int
    allowed_types: list | None
    blocked_types: list
    rules: dict
    presigned_downloads: bool
    delete_with_user: bool

    @classmethod
    def of(cls, project, config: dict) -> "FileSettings":
        own = (project.settings or {}).get("files") or {}
        files = config["files"]
        return cls(max_file_bytes=own.get("max_file_bytes") or files["max_file_bytes"],
                   allowed_types=own.get("allowed_types"), blocked_types=files["blocked_types"],
                   rules={**{a: rules_module.SECURE_DEFAULT[a] for a in FILE_ACTIONS}, **(own.get("rules") or {})},
                   presigned_downloads=bool(own.get("presigned_downloads")),
                   delete_with_user=bool(own.get("delete_with_user")))
