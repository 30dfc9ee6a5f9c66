"""docker/: the compose file is valid Compose, and the Dockerfile matches this repository.

No Docker engine runs here, so the compose file is checked against the Compose Specification's JSON schema as
vendored by check-jsonschema (check_jsonschema/builtin_schemas/vendor/compose-spec.json, from
github.com/compose-spec/compose-spec), and the Dockerfile's paths and commands against the repository.
"""
from __future__ import annotations

import configparser
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from baas.config import ENV_NAMES
from baas_cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def test_compose_file_follows_the_compose_specification(compose):
    schema = json.loads(resources.files("check_jsonschema.builtin_schemas.vendor")
                        .joinpath("compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)  # the schema names its draft (2020-12)
    errors = sorted(validator.iter_errors(compose), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    misspelt = {**compose, "services": {**compose["services"], "api": {**compose["services"]["api"], "helthcheck": {}}}}
    assert list(validator.iter_errors(misspelt)), "the schema check must catch an unknown service key"
    # The schema accepts an empty file: check that it is really ours, not just well-formed.
    assert {"mongo", "minio", "api", "worker"} <= set(compose["services"])


def test_every_service_has_a_health_check_and_named_volumes(compose):
    named = set(compose["volumes"])
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"], name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in named, f"{name} mounts {source}, not a named volume"


def test_mongo_is_a_replica_set_the_api_connects_to(compose):
    mongo = compose["services"]["mongo"]
    assert mongo["command"][:2] == ["--replSet", "rs0"]
    assert "rs.initiate" in " ".join(mongo["healthcheck"]["test"])
    for name in ("api", "worker"):
        assert "replicaSet=rs0" in compose["services"][name]["environment"]["BAAS_MONGODB_URI"]
    assert compose["services"]["api"]["depends_on"]["mongo"]["condition"] == "service_healthy"


def test_compose_environment_names_real_config_keys(compose):
    for name in ("api", "worker"):
        for variable in compose["services"][name]["environment"]:
            assert variable in ENV_NAMES, f"{name}: {variable} is no baas config key"
    assert compose["services"]["worker"]["command"] == ["baas", "worker"]
    assert int(re.search(r":-(\d+)", compose["services"]["api"]["environment"]["BAAS_SERVER_WORKERS"])[1]) > 1


def test_env_example_lists_every_variable_the_compose_file_requires():
    text = (DOCKER / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    listed = {line.split("=", 1)[0] for line in (DOCKER / ".env.example").read_text().splitlines()
              if line and not line.startswith("#")}
    assert used <= listed, used - listed


def _stages(dockerfile: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    stages = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_slim_and_non_root():
    stages = _stages((DOCKER / "Dockerfile").read_text())
    assert len(stages) >= 2
    final = stages[-1]
    assert "slim" in final[0]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    text = "\n".join(final)
    for build_tool in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert build_tool not in text, build_tool
    assert any(line.startswith("COPY --from=build ") for line in final)
    assert any(line.startswith("HEALTHCHECK ") and "/readyz" in line for line in final)


def test_dockerfile_copies_what_the_package_needs():
    stages = _stages((DOCKER / "Dockerfile").read_text())
    copied = set()
    for line in stages[0]:
        if line.startswith("COPY ") and "--from" not in line:
            *sources, _target = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
                copied.add(source)
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    package_dirs = {line.split("=")[1].strip() for line in setup["options"]["package_dir"].strip().splitlines()}
    top_levels = {line.strip().split(".")[0] for line in setup["options"]["packages"].strip().splitlines()}
    needed = {"pyproject.toml", "setup.cfg", "README.md"} | package_dirs | (top_levels & {"baas"})
    assert needed <= copied, needed - copied


def test_the_commands_the_images_run_exist():
    runner = CliRunner()
    for command in (["serve", "--help"], ["worker", "--help"]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 0, result.output
