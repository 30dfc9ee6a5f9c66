"""Discovers plugins, keeps the failed ones out (listed with their error), and calls hooks per project.

A plugin is available once discovered (entry point, module named in config, folder); it runs for a project when
enabled globally (`plugins.enabled`, or registered in code) or for that project through the admin API. Hooks
are called implementation by implementation so that each one can be filtered by project, timed and isolated.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from baas.config import ConfigError
from baas.errors import BaasError, PluginFailed
from baas.plugins import hookspecs
from baas.plugins.registry import collect_functions, collect_jobs, settings_schema

log = logging.getLogger("baas.plugins")

ENTRY_POINT_GROUP = "baas.plugins"
BUNDLED_PACKAGE = "baas_plugins"  # the checkout's plugins/ folder, installed under this name (setup.cfg)
NOT_PLUGINS = ("conftest", "tests", "setup")


def bundled_folder() -> Path:
    return Path(importlib.import_module(BUNDLED_PACKAGE).__file__).resolve().parent


@dataclass
class PluginInfo:
    name: str
    source: str                       # entry point, module, folder, registered
    module: object | None = None
    error: str | None = None
    global_enabled: bool = False
    settings_schema: dict | None = None
    functions: dict = field(default_factory=dict)
    jobs: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "failed" if self.error else "loaded"

    def describe(self) -> dict:
        hooks = sorted(n for n in dir(self.module) if n.startswith("baas_") and callable(getattr(self.module, n))) \
            if self.module is not None else []
        return {"name": self.name, "source": self.source, "status": self.status, "error": self.error,
                "enabled_globally": self.global_enabled, "hooks": hooks,
                "functions": sorted(self.functions), "jobs": sorted(self.jobs),
                "settings_schema": self.settings_schema}


class _Always:
    """Stands in for the enablement store when none is attached: only global plugins run."""

    generation = 0

    @staticmethod
    def enabled_for(project_id):
        return frozenset()

    @staticmethod
    def enabled_until(project_id):
        return frozenset(), float("inf")

    @staticmethod
    def settings(project_id, plugin):
        return None


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, telling the HookManager when the set of hook implementations changes."""

    def __init__(self, project_name: str, changed):
        super().__init__(project_name)
        self._changed = changed

    def register(self, plugin, name=None):
        try:
            return super().register(plugin, name)
        finally:
            self._changed()

    def unregister(self, plugin=None, name=None):
        try:
            return super().unregister(plugin, name)
        finally:
            self._changed()


class HookManager:
    def __init__(self, enabled: list[str] | None = None, blocked: list[str] | None = None, *,
                 modules: list[str] | None = None, folders: list[str] | None = None, strict: bool = False,
                 slow_hook_ms: int = 200, global_settings: dict | None = None):
        # hook name -> (its implementations in call order, those of them that run for every project); emptied
        # whenever a plugin is registered, unregistered or fails, so it is never stale.
        self._by_hook: dict[str, tuple[tuple, tuple]] = {}
        # (hook name, project id) -> (expires, enablements generation, its implementations for that project):
        # valid while the project's enablements entry it came from is, and emptied with _by_hook.
        self._by_project: dict[tuple, tuple] = {}
        self.pm = _PluginManager("baas", self._forget_hooks)
        self.pm.add_hookspecs(hookspecs)
        self.strict = strict
        self.slow_hook_seconds = slow_hook_ms / 1000
        self.global_settings = global_settings or {}
        self.plugins: dict[str, PluginInfo] = {}
        self.enablements = _Always()
        self.context_factory = None        # set by create_app: (plugin_name, project_id) -> PluginContext
        self._global: set[str] = set()     # plugins that run for every project
        self._scoped = False               # any plugin that may be enabled per project at all?
        for name in blocked or []:
            self.pm.set_blocked(name)
        enabled = list(enabled or [])
        for name, source, loader in self._discover(modules or [], folders, enabled):
            if self.pm.is_blocked(name):
                if name in enabled:
                    log.warning("plugin %s is both enabled and blocked; not loading it", name)
                continue
            self._load(name, source, loader, name in enabled)

    # ---- discovery and loading

    @staticmethod
    def _discover(modules: list[str], folders: list[str] | None, enabled: list[str]):
        seen: set[str] = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in seen:
                seen.add(ep.name)
                yield ep.name, "entry point", ep.load
        for folder in ([str(bundled_folder())] if folders is None else folders):
            path = Path(folder)
            if not path.is_dir():
                yield path.name or folder, "folder", _missing(f"plugin folder {folder} does not exist")
                continue
            for child in sorted(path.iterdir()):
                name = child.stem
                if name.startswith(("_", ".", "test_")) or name in seen or name in NOT_PLUGINS:
                    continue
                if child.is_dir() and (child / "__init__.py").exists() or child.suffix == ".py":
                    seen.add(name)
                    yield name, "folder", _folder_loader(child, path)
        for name in [*modules, *enabled]:
            if name not in seen:
                seen.add(name)
                yield name, "module", _module_loader(name)

    def _load(self, name: str, source: str, loader, global_enabled: bool) -> None:
        info = PluginInfo(name, source, global_enabled=global_enabled)
        self.plugins[name] = info
        try:
            module = loader()
            info.settings_schema = settings_schema(module)
            info.functions = collect_functions(name, module)
            info.jobs = collect_jobs(name, module)
            self._check_names(info)
            self.pm.register(module, name=name)
            info.module = module
            self.pm.check_pending()  # a misspelled hook name fails this plugin, by name, at start
        except Exception as exc:  # an import error, a bad schema, a misspelled hook: keep the server up
            self._fail(name, f"{type(exc).__name__}: {exc}")
            return
        if global_enabled:
            self._global.add(name)
        elif info.functions or info.jobs or any(n.startswith("baas_") for n in dir(module)):
            self._scoped = True
        self._forget_hooks()

    def _check_names(self, info: PluginInfo) -> None:
        for other in self.plugins.values():
            if other is info or other.error:
                continue
            clash = set(other.functions) & set(info.functions)
            if clash:
                raise ValueError(f"function {', '.join(sorted(clash))} is already registered by plugin {other.name}")

    def _fail(self, name: str, error: str) -> None:
        if self.strict:
            raise ConfigError(f"plugin '{name}' failed to load: {error}")
        log.error("plugin %s failed to load and is left out: %s", name, error)
        info = self.plugins.setdefault(name, PluginInfo(name, "module"))
        info.error = error
        info.functions, info.jobs = {}, {}
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self._global.discard(name)
        self._forget_hooks()

    def register(self, plugin, name: str | None = None):
        """Register a plugin object in code; it runs for every project (tests and embedding applications)."""
        registered = self.pm.register(plugin, name=name)
        name = self.pm.get_name(plugin)
        self.pm.check_pending()
        # baas's own listeners register as "baas.<feature>": listed as core, never as a project's plugin.
        source = "core" if name.startswith("baas.") else "registered"
        self.plugins[name] = PluginInfo(name, source, module=plugin, global_enabled=True,
                                        settings_schema=settings_schema(plugin),
                                        functions=collect_functions(name, plugin), jobs=collect_jobs(name, plugin))
        self._global.add(name)
        self._forget_hooks()
        return registered

    def unregister(self, name: str) -> None:
        """Take a plugin registered in code out again: its hooks stop running from the next call on."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.plugins.pop(name, None)
        self._global.discard(name)
        self._forget_hooks()

    # ---- which plugins run for a project

    def available(self, name: str) -> PluginInfo | None:
        info = self.plugins.get(name)
        return info if info is not None and info.error is None else None

    def active_for(self, project_id: str | None) -> frozenset:
        """Names of the plugins that run for `project_id` (global ones plus the project's own)."""
        if not self._scoped or project_id is None:
            return frozenset(self._global)
        return frozenset(self._global) | self.enablements.enabled_for(project_id)

    def settings(self, name: str, project_id: str | None) -> dict:
        stored = self.enablements.settings(project_id, name) if project_id else None
        return dict(stored or {})

    def _forget_hooks(self) -> None:
        self._by_hook.clear()
        self._by_project.clear()

    def _impls(self, hook_name: str, project_id: str | None):
        # Every read and write asks for several hooks that usually no plugin has: one dict lookup answers that.
        cached = self._by_hook.get(hook_name)
        if cached is None:
            impls = tuple(reversed(getattr(self.pm.hook, hook_name).get_hookimpls()))
            cached = self._by_hook[hook_name] = (impls, tuple(i for i in impls if i.plugin_name in self._global))
        impls, global_impls = cached
        if not impls or not self._scoped or project_id is None:
            return global_impls
        # Per-project enablements change at runtime: through this process's admin API (the generation moves) or
        # another process's (seen when the enablements entry expires, as before this cache).
        key = (hook_name, project_id)
        enablements = self.enablements
        entry = self._by_project.get(key)
        if entry is not None and entry[1] == enablements.generation and entry[0] > time.monotonic():
            return entry[2]
        generation = enablements.generation
        enabled, expires = enablements.enabled_until(project_id)
        active = self._global | enabled
        found = tuple(impl for impl in impls if impl.plugin_name in active)
        if len(self._by_project) >= 10_000:
            self._by_project.clear()
        self._by_project[key] = (expires, generation, found)
        return found

    @staticmethod
    def _project_of(kwargs) -> str | None:
        project_id = kwargs.get("project_id")
        if project_id is None and kwargs.get("principal") is not None:
            project_id = kwargs["principal"].project_id
        return project_id

    def _call(self, impl, hook_name: str, project_id, kwargs):
        args = {}
        for arg in impl.argnames:
            if arg == "ctx":
                args["ctx"] = self.context_factory(impl.plugin_name, project_id) if self.context_factory else None
            elif arg == "project_id":
                args["project_id"] = project_id
            else:
                args[arg] = kwargs.get(arg)
        started = time.perf_counter()
        try:
            return impl.function(**args)
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > self.slow_hook_seconds:
                log.warning("plugin %s was slow in %s: %.0f ms", impl.plugin_name, hook_name, elapsed * 1000)

    def has(self, hook_name: str, project_id: str | None) -> bool:
        return bool(self._impls(hook_name, project_id))

    def before(self, hook_name: str, **kwargs) -> list:
        """Run a before-hook; Rejected (any BaasError) refuses, anything else becomes a generic 500.

        Returns the implementations' non-None results (an empty list when no plugin ran).
        """
        project_id = self._project_of(kwargs)
        results = []
        for impl in self._impls(hook_name, project_id):
            try:
                result = self._call(impl, hook_name, project_id, kwargs)
            except BaasError:
                raise
            except Exception:
                log.exception("plugin %s failed in %s; the operation was aborted", impl.plugin_name, hook_name)
                raise PluginFailed() from None
            results.append(result)
        return results

    def after(self, hook_name: str, **kwargs) -> None:
        """Run an after-hook; each implementation is isolated so one broken plugin harms nothing else."""
        project_id = self._project_of(kwargs)
        for impl in self._impls(hook_name, project_id):
            try:
                self._call(impl, hook_name, project_id, kwargs)
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)

    # ---- functions and jobs of the loaded plugins

    def functions(self) -> dict:
        return {name: fn for info in self.plugins.values() if not info.error for name, fn in info.functions.items()}

    def jobs(self) -> dict:
        return {name: job for info in self.plugins.values() if not info.error for name, job in info.jobs.items()}


def _missing(message: str):
    def load():
        raise ImportError(message)
    return load


def _module_loader(name: str):
    return lambda: importlib.import_module(name)


def _folder_loader(child: Path, folder: Path):
    def load():
        if folder.resolve() == bundled_folder():
            return importlib.import_module(f"{BUNDLED_PACKAGE}.{child.stem}")
        # Other folders get their own namespace, so a plugin named like an installed module never shadows it.
        module_name = f"baas_folder_plugins.{child.stem}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        init = child / "__init__.py" if child.is_dir() else child
        spec = importlib.util.spec_from_file_location(
            module_name, init, submodule_search_locations=[str(child)] if child.is_dir() else None)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        return module
    return load


def from_config(plugins_config: dict) -> HookManager:
    return HookManager(plugins_config["enabled"], plugins_config["blocked"], modules=plugins_config["modules"],
                       folders=plugins_config["folders"], strict=plugins_config["strict"],
                       slow_hook_ms=plugins_config["slow_hook_ms"], global_settings=plugins_config["settings"])
