"""Which plugins each project enabled, with their settings: one document per (project, plugin), cached briefly."""
from __future__ import annotations

from pymongo import ASCENDING

from baas.storage.mongo import ensure_index
from baas.util import TTLCache, utcnow


class Enablements:
    def __init__(self, mongo, cache_seconds: float = 2):
        self.collection = mongo.platform["plugin_enablements"]
        # Other processes see an enable/disable when their entry expires (keys.cache_seconds).
        self._cache = TTLCache(cache_seconds)
        # Counts this process's own changes, so what was derived from an entry (the hooks a project runs, see
        # HookManager) is renewed at once after one, not only when the entry expires.
        self.generation = 0

    def ensure_indexes(self) -> None:
        ensure_index(self.collection, [("project_id", ASCENDING)], name="project_id")

    def _project(self, project_id: str) -> dict:
        found = self._cache.get(project_id)
        if found is None:
            found = {d["plugin"]: d for d in self.collection.find({"project_id": project_id})}
            self._cache.set(project_id, found)
        return found

    def enabled_for(self, project_id: str) -> frozenset:
        return frozenset(self._project(project_id))

    def enabled_until(self, project_id: str) -> tuple[frozenset, float]:
        """enabled_for, and the monotonic time until which this process goes on answering the same."""
        found = self._project(project_id)
        _, expires = self._cache.get_until(project_id)
        return frozenset(found), expires

    def forget_cached(self, project_id: str) -> None:
        self._cache.discard(project_id)
        self.generation += 1

    def settings(self, project_id: str, plugin: str) -> dict | None:
        entry = self._project(project_id).get(plugin)
        return entry["settings"] if entry else None

    def get(self, project_id: str, plugin: str) -> dict | None:
        return self._project(project_id).get(plugin)

    def list(self, project_id: str) -> list[dict]:
        return sorted(self._project(project_id).values(), key=lambda d: d["plugin"])

    def projects_with(self, plugin: str) -> list[str]:
        return sorted(d["project_id"] for d in self.collection.find({"plugin": plugin}, {"project_id": 1}))

    def enable(self, project_id: str, plugin: str, settings: dict) -> tuple[dict, bool]:
        existed = self.collection.find_one({"_id": f"{project_id}:{plugin}"}, {"_id": 1}) is not None
        self.collection.update_one({"_id": f"{project_id}:{plugin}"},
                                   {"$set": {"project_id": project_id, "plugin": plugin, "settings": settings},
                                    "$currentDate": {"updated_at": True}}, upsert=True)
        self.forget_cached(project_id)
        return self._project(project_id)[plugin], not existed

    def disable(self, project_id: str, plugin: str) -> bool:
        deleted = self.collection.delete_one({"_id": f"{project_id}:{plugin}"}).deleted_count
        self.forget_cached(project_id)
        return bool(deleted)

    def forget_project(self, project_id: str) -> None:
        self.collection.delete_many({"project_id": project_id})
        self.forget_cached(project_id)


class EnablementsPart:
    """Project export/import (baas.projects.transfer): which plugins a project enabled, with their settings."""

    name = "plugin_settings"

    def __init__(self, enablements: Enablements):
        self.enablements = enablements

    def export(self, project_id: str):
        return ({"plugin": d["plugin"], "settings": d.get("settings") or {}}
                for d in self.enablements.collection.find({"project_id": project_id}).sort("_id", 1))

    def replace(self, project_id: str, records: list[dict], *, same_id: bool) -> int:
        collection = self.enablements.collection
        collection.delete_many({"project_id": project_id})
        if records:
            collection.insert_many([{"_id": f"{project_id}:{r['plugin']}", "project_id": project_id,
                                     "plugin": r["plugin"], "settings": r.get("settings") or {}, "updated_at": utcnow()}
                                    for r in records])
        self.enablements.forget_cached(project_id)
        return len(records)
