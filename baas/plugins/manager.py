"""Loads plugins named in config and calls hooks: before-hooks may refuse, after-hooks are isolated."""
from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

import pluggy

from baas.config import ConfigError
from baas.plugins import hookspecs

log = logging.getLogger("baas.plugins")

ENTRY_POINT_GROUP = "baas.plugins"


class HookManager:
    def __init__(self, enabled: list[str] | None = None, blocked: list[str] | None = None):
        self.pm = pluggy.PluginManager("baas")
        self.pm.add_hookspecs(hookspecs)
        for name in blocked or []:
            self.pm.set_blocked(name)
        for name in enabled or []:
            if self.pm.is_blocked(name):
                log.warning("plugin %s is both enabled and blocked; not loading it", name)
                continue
            self.register(self._load(name), name=name)

    @staticmethod
    def _load(name: str):
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                try:
                    return ep.load()
                except Exception as exc:
                    raise ConfigError(f"plugin '{name}' failed to load: {exc}") from exc
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"plugin '{name}' is neither an installed entry point nor an importable module: "
                              f"{exc}") from None

    def register(self, plugin, name: str | None = None):
        return self.pm.register(plugin, name=name)

    def implemented(self, hook_name: str) -> bool:
        """Whether any plugin implements the hook (callers skip work only a plugin would need)."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def before(self, hook_name: str, **kwargs) -> None:
        """Run a before-hook; exceptions (Rejected) propagate to refuse the operation."""
        hook = getattr(self.pm.hook, hook_name)
        if hook.get_hookimpls():  # most hooks have no plugin: skip pluggy's call machinery on the hot paths
            hook(**kwargs)

    def after(self, hook_name: str, **kwargs) -> None:
        """Run an after-hook; each implementation is isolated so one broken plugin harms nothing else."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames if arg in kwargs})
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)
