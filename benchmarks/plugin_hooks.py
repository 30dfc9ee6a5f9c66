"""CPU cost of the hook dispatch on the write path, per call, in-process (no server, no database).

Measures HookManager.after() and .has() as the documents service calls them, for a project that
1. runs in a server without any plugin implementing the hook,
2. has the bundled plugins installed but none enabled for it (the enablement lookup is the TTL cache),
3. has one plugin enabled (its implementation is a no-op, so only the dispatch is measured).

    python benchmarks/plugin_hooks.py [--calls 200000]
"""
from __future__ import annotations

import argparse
import time

from baas.plugins import hookimpl
from baas.plugins.manager import HookManager


class Enabled:
    """The enablement store once its per-project cache is warm: a lookup that answers from memory."""

    def __init__(self, names):
        self.names = frozenset(names)

    def enabled_for(self, project_id):
        return self.names

    def settings(self, project_id, plugin):
        return {}


class NoOp:
    @hookimpl
    def baas_after_document_write(self, document):
        pass


def per_call_ns(hooks: HookManager, calls: int) -> tuple[float, float]:
    kwargs = dict(project_id="p1", principal=None, collection="notes", action="create", document={}, previous=None)
    started = time.process_time()
    for _ in range(calls):
        hooks.has("baas_before_document_write", "p1")
    has_ns = (time.process_time() - started) / calls * 1e9
    started = time.process_time()
    for _ in range(calls):
        hooks.after("baas_after_document_write", **kwargs)
    return has_ns, (time.process_time() - started) / calls * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    calls = parser.parse_args().calls

    bare = HookManager(folders=[])
    installed = HookManager()                      # bundled plugins discovered, none enabled
    installed.enablements = Enabled([])
    enabled = HookManager()
    enabled.enablements = Enabled([])
    enabled.register(NoOp(), name="noop")          # enabled for every project
    for label, hooks in (("no plugin implements the hook", bare), ("bundled installed, none enabled", installed),
                         ("one no-op plugin enabled", enabled)):
        has_ns, after_ns = per_call_ns(hooks, calls)
        print(f"{label:34s} has(): {has_ns:7.0f} ns   after(): {after_ns:7.0f} ns CPU per call")


if __name__ == "__main__":
    main()
