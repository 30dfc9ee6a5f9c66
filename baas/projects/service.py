"""Projects: each has its own database and its own file prefix; deleting one deletes both."""
from __future__ import annotations

import logging

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from baas.errors import Conflict, Invalid, NotFound
from baas.principal import ProjectInfo
from baas.storage.mongo import PROJECT_ID_PATTERN, ensure_index
from baas.util import TTLCache, utcnow

log = logging.getLogger("baas.projects")

RESERVED_IDS = {"admin", "local", "config", "platform", "api", "www", "import"}  # import: /admin/v1/projects/import


def project_prefix(project_id: str) -> str:
    """The blob-store prefix that holds every file of a project."""
    return f"projects/{project_id}/"


class ProjectService:
    def __init__(self, mongo, blobs, hooks, cache_seconds: float = 2):
        self.mongo = mongo
        self.blobs = blobs
        self.hooks = hooks
        self.collection = mongo.platform["projects"]
        self._cache = TTLCache(cache_seconds)
        # Called after a delete: caches elsewhere (API keys) must not outlive the project in this process,
        # or a key of a deleted project would open a new project created with the same id.
        self.on_delete: list = []
        # Called while the project is marked 'deleting', before its record goes: secrets kept outside the project
        # database (push credentials) go with it. An error stops the delete there, and repeating it finishes, so
        # nothing outlives the project and opens for a new project created with the same id.
        self.on_deleting: list = []
        mongo.storage_of = self.storage_id

    def storage_id(self, project_id: str) -> str | None:
        """The storage an imported project lives in (see baas.projects.transfer); None: its own database.

        Cached like the project itself: after an import switches a project, other processes follow within
        keys.cache_seconds (the import waits that long before it drops the old data)."""
        found = self._cache.get(("storage", project_id))
        if found is None:
            doc = self.collection.find_one({"_id": project_id}, {"storage": 1})
            found = (doc or {}).get("storage") or ""
            self._cache.set(("storage", project_id), found)
        return found or None

    def forget_cached(self, project_id: str) -> None:
        """Drop this process's cached view of a project (after an import switched it)."""
        self._cache.discard(project_id)
        self._cache.discard(("storage", project_id))
        self._cache.discard(("cors",))

    def ensure_indexes(self) -> None:
        ensure_index(self.collection, [("created_at", ASCENDING)], name="created_at")

    @staticmethod
    def check_id(project_id: str) -> str:
        if not isinstance(project_id, str) or not PROJECT_ID_PATTERN.match(project_id):
            raise Invalid("A project id is 3 to 40 characters: lowercase letters, digits and '-', starting with a "
                          "letter and not ending with '-'.", errors={"id": ["Invalid project id."]})
        if project_id in RESERVED_IDS:
            raise Invalid(f"The project id '{project_id}' is reserved.", errors={"id": ["Reserved project id."]})
        return project_id

    def create(self, project_id: str, name: str | None = None, settings: dict | None = None) -> dict:
        self.check_id(project_id)
        now = utcnow()
        doc = {"_id": project_id, "name": name or project_id, "settings": settings or {},
               "status": "active", "created_at": now, "updated_at": now}
        try:
            self.collection.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"A project with id '{project_id}' already exists.") from None
        self.hooks.after("baas_project_created", project_id=project_id, project=doc)
        return doc

    def list(self) -> list[dict]:
        return list(self.collection.find({"status": "active"}).sort("created_at", ASCENDING))

    def get(self, project_id: str) -> dict:
        doc = self.collection.find_one({"_id": project_id, "status": "active"}) if isinstance(project_id, str) \
            else None
        if doc is None:
            raise NotFound(f"No project '{project_id}'.")
        return doc

    def info(self, project_id: str) -> ProjectInfo:
        """A cached, read-only view of the project for the request path."""
        info = self._cache.get(project_id)
        if info is None:
            doc = self.get(project_id)
            info = ProjectInfo(id=doc["_id"], name=doc["name"], settings=doc.get("settings") or {})
            self._cache.set(project_id, info)
        return info

    def update(self, project_id: str, name: str | None = None, settings: dict | None = None) -> dict:
        current = self.get(project_id)
        changes: dict = {}
        if name is not None:
            changes["name"] = name
        if settings is not None:
            merged = dict(current.get("settings") or {})
            merged.update(settings)
            changes["settings"] = merged
        # Timestamps go through $currentDate, not $set: nx-27017 (the embedded default) stores a datetime given
        # to $set as a string. On MongoDB both are the same.
        update: dict = {"$currentDate": {"updated_at": True}}
        if changes:
            update["$set"] = changes
        self.collection.update_one({"_id": project_id, "status": "active"}, update)
        self._cache.clear()
        return self.get(project_id)

    def delete(self, project_id: str, confirm: str | None) -> None:
        if confirm != project_id:
            raise Invalid("Deleting a project deletes its database and files; repeat the project id as "
                          "confirmation.", errors={"confirm": [f"Must be '{project_id}'."]})
        # A delete that failed half-way left the project 'deleting'; running it again finishes the job.
        marked = self.collection.update_one({"_id": project_id, "status": {"$in": ["active", "deleting"]}},
                                            {"$set": {"status": "deleting"}, "$currentDate": {"updated_at": True}})
        if marked.matched_count == 0:
            raise NotFound(f"No project '{project_id}'.")
        # Marked first, so keys of the project stop working before its data goes.
        self._cache.clear()
        self.mongo.platform["api_keys"].delete_many({"project_id": project_id})
        for remove in self.on_deleting:
            remove(project_id)
        storage = (self.collection.find_one({"_id": project_id}, {"storage": 1}) or {}).get("storage")
        self.mongo.drop_project(project_id, storage)
        removed = self.blobs.delete_prefix(project_prefix(project_id))
        if storage:
            from baas.projects.transfer import storage_prefix

            removed += self.blobs.delete_prefix(storage_prefix(storage))
        self.collection.delete_one({"_id": project_id})
        for forget in self.on_delete:
            forget(project_id)
        log.info("deleted project %s (%d files)", project_id, removed)
        self.hooks.after("baas_project_deleted", project_id=project_id)

    @staticmethod
    def describe_caller(principal) -> dict:
        """What an API key may learn about itself: its project and its own kind and scopes, nothing secret."""
        return {"id": principal.project.id, "name": principal.project.name,
                "key": {"id": principal.key.id, "kind": principal.key.kind, "scopes": sorted(principal.key.scopes)}}

    def all_cors_origins(self) -> frozenset:
        cached = self._cache.get(("cors",))
        if cached is None:
            origins = set()
            for doc in self.collection.find({"status": "active"}, {"settings": 1}):
                origins.update((doc.get("settings") or {}).get("cors_origins") or ())
            cached = frozenset(origins)
            self._cache.set(("cors",), cached)
        return cached
