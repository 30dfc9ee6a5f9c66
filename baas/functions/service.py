"""Calling cloud functions: who may call, input validation, rate limits and the failure policy."""
from __future__ import annotations

import logging
import time

import jsonschema
import orjson

from baas.errors import BaasError, Forbidden, Invalid, NotFound, PluginFailed, Unauthorized
from baas.plugins.context import PluginContext
from baas.ratelimit import Rate

log = logging.getLogger("baas.plugins")


class FunctionService:
    def __init__(self, svc):
        self.svc = svc
        self.hooks = svc.hooks
        self._validators: dict = {}

    def list(self, project_id: str | None = None) -> list[dict]:
        """Every function (or those that run for `project_id`), described for the CLI and the admin API."""
        active = self.hooks.active_for(project_id) if project_id else None
        return [{"name": f.name, "plugin": f.plugin, "access": f.access, "roles": list(f.roles),
                 "rate_limit": f.rate_limit, "description": f.description, "input_schema": input_schema(f)}
                for f in sorted(self.hooks.functions().values(), key=lambda f: f.name)
                if active is None or f.plugin in active]

    def _function(self, principal, name: str):
        spec = self.hooks.functions().get(name)
        if spec is None or spec.plugin not in self.hooks.active_for(principal.project_id):
            raise NotFound(f"No function '{name}' in this project.")
        return spec

    @staticmethod
    def _check_access(spec, principal) -> None:
        if principal.is_server:
            return
        if spec.access == "server":
            raise Forbidden(f"Function '{spec.name}' may be called with a server key only.")
        if spec.access in ("authenticated", "role") and principal.user is None:
            raise Unauthorized(f"Function '{spec.name}' needs a signed-in user.")
        if spec.access == "role" and not set(spec.roles) & set(principal.roles):
            raise Forbidden(f"Function '{spec.name}' needs one of the roles: {', '.join(spec.roles)}.")

    def _validate(self, spec, args):
        if spec.schema is None:
            return args
        if isinstance(spec.schema, dict):
            validator = self._validators.get(spec.name)
            if validator is None:
                validator = self._validators[spec.name] = jsonschema.Draft202012Validator(spec.schema)
            errors: dict = {}
            for error in validator.iter_errors(args):
                errors.setdefault(".".join(str(p) for p in error.absolute_path) or "(body)", []).append(error.message)
            if errors:
                first = next(iter(errors.items()))
                raise Invalid(f"The arguments are not valid: {first[0]}: {first[1][0]}", errors=errors)
            return args
        from marshmallow import ValidationError

        schema = spec.schema() if isinstance(spec.schema, type) else spec.schema
        try:
            return schema.load(args)
        except ValidationError as exc:
            raise Invalid("The arguments are not valid; see errors.", errors=exc.normalized_messages()) from None

    def call(self, principal, name: str, args) -> object:
        principal.require_scope("functions:call")
        spec = self._function(principal, name)
        self._check_access(spec, principal)
        if spec.rate_limit and self.svc.limiter is not None:
            caller = principal.user_id or (principal.key.id if principal.key else "admin")
            self.svc.limiter.hit(f"fn|{principal.project_id}|{spec.name}|{caller}", Rate.parse(spec.rate_limit),
                                 f"Too many calls of '{spec.name}'; slow down.")
        args = self._validate(spec, args)
        ctx = PluginContext(self.svc, spec.plugin, principal.project_id, principal)
        started = time.perf_counter()
        try:
            result = spec.handler(ctx, args)
            orjson.dumps(result)  # a result that cannot be sent is the function's bug, not the caller's
        except BaasError:
            raise
        except Exception:
            log.exception("plugin %s failed in function %s", spec.plugin, spec.name)
            raise PluginFailed() from None
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > self.hooks.slow_hook_seconds:
                log.warning("plugin %s was slow in function %s: %.0f ms", spec.plugin, spec.name, elapsed * 1000)
        return result


def input_schema(spec) -> dict | None:
    if isinstance(spec.schema, dict):
        return {k: v for k, v in spec.schema.items() if k != "$schema"}
    return None
