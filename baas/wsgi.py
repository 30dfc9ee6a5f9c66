"""Entry point for server worker processes: `baas serve` hands them its resolved config in the environment."""
import json
import os

from baas import create_app

RESOLVED_CONFIG_ENV = "BAAS_RESOLVED_CONFIG"


def app_from_env():
    return create_app(json.loads(os.environ[RESOLVED_CONFIG_ENV]))
