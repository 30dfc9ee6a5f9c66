"""Cloud functions and jobs that plugins declare with `@function` and `@job`, and plugin settings schemas."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import jsonschema

FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}(\.[a-z][a-z0-9_-]{0,39})?$")
ACCESS = ("public", "authenticated", "role", "server")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: object
    plugin: str = ""
    access: str = "authenticated"
    roles: tuple = ()
    schema: object = None              # a JSON Schema dict or a marshmallow Schema (class or instance)
    rate_limit: str | None = None      # e.g. "10/minute" per caller
    description: str = ""


@dataclass(frozen=True)
class JobSpec:
    name: str
    handler: object
    plugin: str = ""
    cron: str | None = None
    interval: dict = field(default_factory=dict)
    per_project: bool = True
    description: str = ""

    def trigger(self):
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger
        from datetime import datetime, timezone

        if self.cron:
            return CronTrigger.from_crontab(self.cron, timezone=timezone.utc)
        # A fixed start keeps the fire times the same in every worker process.
        return IntervalTrigger(**self.interval, start_date=datetime(2020, 1, 1, tzinfo=timezone.utc),
                               timezone=timezone.utc)

    @property
    def frequent(self) -> bool:
        """Runs more often than every five minutes."""
        if self.cron:
            return self.cron.split()[0] in ("*", "*/1", "*/2", "*/3", "*/4")
        units = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
        return sum(units.get(k, 0) * v for k, v in self.interval.items()) < 300

    @property
    def schedule(self) -> str:
        return f"cron {self.cron}" if self.cron else "every " + ", ".join(f"{v} {k}" for k, v in self.interval.items())


def function(name: str | None = None, *, access: str = "authenticated", roles=(), schema=None,
             rate_limit: str | None = None):
    """Mark `handler(ctx, args)` as the cloud function POST /v1/functions/{name}.

    access: public (any API key), authenticated (a signed-in user), role (a user with one of `roles`), server
    (server keys only; server keys may call every function). schema: a JSON Schema dict or marshmallow schema
    for the JSON body. rate_limit: "N/period" per caller, counted by the shared rate limiter.
    """
    if access not in ACCESS:
        raise ValueError(f"function access must be one of {', '.join(ACCESS)}")
    if access == "role" and not roles:
        raise ValueError("access='role' needs roles=[...]")
    if isinstance(schema, dict):
        jsonschema.Draft202012Validator.check_schema(schema)
    if rate_limit is not None:
        import limits
        limits.parse(rate_limit)

    def mark(handler):
        handler.__baas_function__ = dict(name=name or handler.__name__, access=access, roles=tuple(roles),
                                         schema=schema, rate_limit=rate_limit,
                                         description=(handler.__doc__ or "").strip())
        return handler
    return mark


def job(name: str | None = None, *, cron: str | None = None, per_project: bool = True, **interval):
    """Mark `handler(ctx)` as a scheduled job: `cron="*/5 * * * *"` or an interval (`minutes=10`, `seconds=30`).

    per_project: run once per project that enabled the plugin (ctx.project set), or once in all (ctx.project None).
    """
    if bool(cron) == bool(interval):
        raise ValueError("a job takes either cron='...' or an interval such as minutes=5")

    def mark(handler):
        spec = JobSpec(name or handler.__name__, handler, cron=cron, interval=interval, per_project=per_project,
                       description=(handler.__doc__ or "").strip())
        spec.trigger()  # a bad cron expression fails the plugin at start, not at the first run
        handler.__baas_job__ = spec
        return handler
    return mark


def _members(plugin):
    for attr in dir(plugin):
        if not attr.startswith("__"):
            yield getattr(plugin, attr, None)


def collect_functions(plugin_name: str, plugin) -> dict:
    found = {}
    for member in _members(plugin):
        meta = getattr(member, "__baas_function__", None)
        if meta is None or not callable(member):
            continue
        name = meta["name"] if "." in meta["name"] else f"{plugin_name}.{meta['name']}"
        if not FUNCTION_NAME.match(name):
            raise ValueError(f"function name {name!r} must be lowercase letters, digits, '_' and '-' ")
        found[name] = FunctionSpec(name=name, handler=member, plugin=plugin_name,
                                   **{k: v for k, v in meta.items() if k != "name"})
    return found


def collect_jobs(plugin_name: str, plugin) -> dict:
    found = {}
    for member in _members(plugin):
        spec = getattr(member, "__baas_job__", None)
        if isinstance(spec, JobSpec):
            name = f"{plugin_name}.{spec.name}"
            found[name] = JobSpec(name, member, plugin_name, spec.cron, spec.interval, spec.per_project,
                                  spec.description)
    return found


def settings_schema(plugin) -> dict | None:
    schema = getattr(plugin, "baas_plugin_settings", None)
    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise ValueError("baas_plugin_settings must be a JSON Schema object")
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def settings_errors(schema: dict | None, settings) -> dict:
    """{key path: [messages]} for settings that do not match the plugin's schema (empty when they do)."""
    if not isinstance(settings, dict):
        return {"settings": ["Settings are a JSON object."]}
    if schema is None:
        return {key: ["This plugin takes no settings."] for key in settings}
    errors: dict = {}
    for error in jsonschema.Draft202012Validator(schema).iter_errors(settings):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties":
            extra = set(settings if not path else {}) - set(error.schema.get("properties", {}))
            for key in sorted(extra) or [path or "settings"]:
                errors.setdefault(key, []).append("Unknown setting.")
            continue
        if error.validator == "required" and error.message.startswith("'"):
            path = ".".join(filter(None, [path, error.message.split("'")[1]]))
        errors.setdefault(path or "settings", []).append(error.message)
    return errors
