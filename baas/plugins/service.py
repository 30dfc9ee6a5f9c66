"""Admin rules for plugins: what is loaded (or failed), and enabling plugins per project with checked settings."""
from __future__ import annotations

from baas.errors import Conflict, Invalid, NotFound
from baas.plugins.registry import settings_errors


class PluginAdmin:
    def __init__(self, hooks, enablements, projects):
        self.hooks = hooks
        self.enablements = enablements
        self.projects = projects

    def list(self) -> list[dict]:
        return [info.describe() for _, info in sorted(self.hooks.plugins.items())]

    def _loaded(self, name: str):
        info = self.hooks.plugins.get(name)
        if info is None:
            raise NotFound(f"No plugin '{name}' is installed; GET /admin/v1/plugins lists them.")
        if info.error:
            raise Conflict(f"Plugin '{name}' failed to load and cannot be enabled: {info.error}")
        return info

    def _describe(self, project_id: str, name: str, entry: dict | None) -> dict:
        info = self.hooks.plugins[name]
        return {"plugin": name, "project_id": project_id, "enabled_globally": info.global_enabled,
                "settings": (entry or {}).get("settings", {}), "updated_at": (entry or {}).get("updated_at")}

    def for_project(self, project_id: str) -> list[dict]:
        self.projects.info(project_id)
        own = {e["plugin"]: e for e in self.enablements.list(project_id)}
        names = sorted(set(own) | {n for n, i in self.hooks.plugins.items()
                                    if i.global_enabled and not i.error and i.source != "core"})
        return [self._describe(project_id, n, own.get(n)) for n in names if n in self.hooks.plugins]

    def get(self, project_id: str, name: str) -> dict:
        self.projects.info(project_id)
        info = self._loaded(name)
        entry = self.enablements.get(project_id, name)
        if entry is None and not info.global_enabled:
            raise NotFound(f"Plugin '{name}' is not enabled for project '{project_id}'.")
        return self._describe(project_id, name, entry)

    def enable(self, project_id: str, name: str, settings: dict | None) -> tuple[dict, bool]:
        self.projects.info(project_id)
        info = self._loaded(name)
        settings = {} if settings is None else settings
        errors = settings_errors(info.settings_schema, settings)
        if errors:
            first = next(iter(errors.items()))
            raise Invalid(f"Settings for plugin '{name}' are not valid: {first[0]}: {first[1][0]}",
                          errors={"settings": errors})
        entry, created = self.enablements.enable(project_id, name, settings)
        return self._describe(project_id, name, entry), created

    def disable(self, project_id: str, name: str) -> None:
        self.projects.info(project_id)
        if not self.enablements.disable(project_id, name):
            raise NotFound(f"Plugin '{name}' is not enabled for project '{project_id}'.")
