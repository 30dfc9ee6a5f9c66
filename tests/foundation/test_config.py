"""Configuration: defaults < YAML (--config / BAAS_CONFIG) < BAAS_* variables, and one clear error at start."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from baas import config as cfg
from baas.config import ConfigError
from baas.storage.embedded import free_port

from foundation_support import REPO, assert_one_line_error, clean_env, run_baas


def write_yaml(tmp_path: Path, data, name: str = "baas.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_defaults_without_file_or_environment():
    config = cfg.load(None, env={})
    assert config["server"] == {"host": "127.0.0.1", "port": 8000, "workers": 1, "threads": 4, "public_url": None,
                                "max_body_bytes": 1_048_576, "trusted_proxies": 0, "shutdown_timeout_seconds": 5}
    assert config["mongodb"]["uri"] is None
    assert config["storage"]["s3"]["endpoint"] is None
    assert config["data_dir"] == "./baas-data"
    assert config["admin_token"] is None
    assert config == cfg.defaults()


def test_yaml_file_overrides_defaults_and_keeps_the_rest(tmp_path):
    path = write_yaml(tmp_path, {"server": {"port": 9100, "public_url": "https://api.example.com"},
                                 "cors": {"allowed_origins": ["https://app.example.com"]},
                                 "keys": {"cache_seconds": 0.5}})
    config = cfg.load(path, env={})
    assert config["server"]["port"] == 9100
    assert config["server"]["public_url"] == "https://api.example.com"
    assert config["server"]["host"] == "127.0.0.1"
    assert config["cors"]["allowed_origins"] == ["https://app.example.com"]
    assert config["keys"]["cache_seconds"] == 0.5


def test_baas_config_variable_names_the_file(tmp_path):
    path = write_yaml(tmp_path, {"server": {"port": 9200}})
    assert cfg.load(None, env={"BAAS_CONFIG": str(path)})["server"]["port"] == 9200


def test_environment_wins_over_yaml(tmp_path):
    path = write_yaml(tmp_path, {"server": {"port": 9100, "workers": 2}, "storage": {"s3": {"secure": True}},
                                 "mongodb": {"uri": "mongodb://from-yaml:27017/"}})
    env = {"BAAS_SERVER_PORT": "9300", "BAAS_STORAGE_S3_SECURE": "false", "BAAS_MONGODB_URI": "mongodb://env:1/",
           "BAAS_CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example", "BAAS_KEYS_CACHE_SECONDS": "1.5"}
    config = cfg.load(path, env=env)
    assert config["server"]["port"] == 9300
    assert config["server"]["workers"] == 2          # from the file, untouched by the environment
    assert config["storage"]["s3"]["secure"] is False
    assert config["mongodb"]["uri"] == "mongodb://env:1/"
    assert config["cors"]["allowed_origins"] == ["https://a.example", "https://b.example"]
    assert config["keys"]["cache_seconds"] == 1.5


def test_command_line_overrides_win_over_environment():
    config = cfg.load(None, env={"BAAS_SERVER_PORT": "9300"}, overrides={"server.port": 9400})
    assert config["server"]["port"] == 9400


def test_empty_environment_value_clears_a_nullable_key(tmp_path):
    path = write_yaml(tmp_path, {"server": {"public_url": "https://x.example"}})
    assert cfg.load(path, env={"BAAS_SERVER_PUBLIC_URL": ""})["server"]["public_url"] is None


@pytest.mark.parametrize("data, needle", [
    ({"server": {"prot": 1}}, "'server.prot'"),
    ({"nonsense": True}, "'nonsense'"),
    ({"storage": {"s3": {"endpont": "x"}}}, "'storage.s3.endpont'"),
])
def test_unknown_key_is_named(tmp_path, data, needle):
    with pytest.raises(ConfigError, match="unknown config key") as info:
        cfg.load(write_yaml(tmp_path, data), env={})
    assert needle in str(info.value)


@pytest.mark.parametrize("data, needle", [
    ({"server": {"port": "eighty"}}, "'server.port' must be an integer"),
    ({"server": {"port": True}}, "'server.port' must be an integer"),
    ({"server": {"port": 70000}}, "'server.port' must be at most 65535"),
    ({"server": {"workers": 0}}, "'server.workers' must be at least 1"),
    ({"storage": {"s3": {"secure": "yes"}}}, "'storage.s3.secure' must be true or false"),
    ({"cors": {"allowed_origins": "https://a.example"}}, "'cors.allowed_origins' must be a list"),
    ({"cors": {"allowed_origins": [1]}}, "'cors.allowed_origins' must list non-empty strings"),
    ({"plugins": {"enabled": [{"x": 1}]}}, "'plugins.enabled' must list non-empty strings"),
    ({"logging": {"level": "LOUD"}}, "'logging.level' must be one of"),
    ({"data_dir": None}, "'data_dir' must be a string"),
    ({"server": 8000}, "section 'server' must be a mapping"),
    ({"mongodb": {"db_prefix": "bad prefix!"}}, "'mongodb.db_prefix'"),
    ({"admin_token": "short"}, "'admin_token' must be at least 16 characters"),
    ({"storage": {"s3": {"endpoint": "s3.example.com"}}}, "'storage.s3.access_key'"),
])
def test_wrong_value_names_the_key(tmp_path, data, needle):
    with pytest.raises(ConfigError) as info:
        cfg.load(write_yaml(tmp_path, data), env={})
    assert needle in str(info.value)


@pytest.mark.parametrize("name, value, needle", [
    ("BAAS_SERVER_PORT", "eighty", "must be an integer"),
    ("BAAS_SERVER_WORKERS", "0", "'server.workers' must be at least 1"),
    ("BAAS_STORAGE_S3_SECURE", "maybe", "must be true or false"),
    ("BAAS_KEYS_CACHE_SECONDS", "soon", "must be a number"),
    ("BAAS_LOGGING_LEVEL", "LOUD", "'logging.level' must be one of"),
])
def test_bad_environment_value_names_the_variable_or_key(name, value, needle):
    with pytest.raises(ConfigError) as info:
        cfg.load(None, env={name: value})
    message = str(info.value)
    assert needle in message
    key = cfg.ENV_NAMES[name]
    assert name in message or f"'{key}'" in message


def test_bad_environment_type_names_the_variable():
    with pytest.raises(ConfigError) as info:
        cfg.load(None, env={"BAAS_SERVER_PORT": "eighty"})
    assert "BAAS_SERVER_PORT" in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        cfg.load(tmp_path / "absent.yaml", env={})
    with pytest.raises(ConfigError, match="not valid YAML"):
        cfg.load(write_yaml(tmp_path, "server: [port: 1\n"), env={})
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        cfg.load(write_yaml(tmp_path, "- a\n- b\n"), env={})


def test_empty_file_means_defaults(tmp_path):
    assert cfg.load(write_yaml(tmp_path, ""), env={}) == cfg.defaults()


def test_from_mapping_validates_like_load():
    with pytest.raises(ConfigError, match="'server.prot'"):
        cfg.from_mapping({"server": {"prot": 1}})
    assert cfg.from_mapping({"server": {"port": 1234}})["server"]["port"] == 1234


# --- config.example.yaml documents every key with its default -------------------------------------------------

def test_example_config_lists_every_key_with_a_comment():
    text = (REPO / "config.example.yaml").read_text()
    lines = text.splitlines()
    for path, key in cfg.KEYS.items():
        *parents, leaf = path.split(".")
        indent = "  " * len(parents)
        matches = [i for i, line in enumerate(lines) if line.startswith(f"{indent}{leaf}:")]
        assert matches, f"config.example.yaml lacks '{path}'"
        env_name = "BAAS_" + path.replace(".", "_").upper()
        assert any(env_name in lines[i] for i in matches), f"config.example.yaml does not name {env_name}"
        assert any(lines[i - 1].strip().startswith("#") for i in matches), f"'{path}' has no comment above it"


def test_example_config_loads_to_the_defaults():
    assert cfg.load(REPO / "config.example.yaml", env={}) == cfg.defaults()


def test_example_config_has_nothing_the_schema_lacks():
    data = yaml.safe_load((REPO / "config.example.yaml").read_text())

    def leaves(node, prefix=""):
        for name, value in node.items():
            if isinstance(value, dict) and f"{prefix}{name}" not in cfg.KEYS:  # a section, not a mapping key
                yield from leaves(value, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}"

    assert set(leaves(data)) == set(cfg.KEYS)


def test_configuration_doc_lists_every_key():
    text = (REPO / "docs" / "configuration.md").read_text()
    missing = [path for path in cfg.KEYS if f"`{path}`" not in text]
    assert not missing, f"docs/configuration.md lacks {missing}"


# --- `baas serve` refuses bad configuration with one line, no traceback ------------------------------------------

def test_serve_with_unknown_key_exits_with_one_line(tmp_path):
    path = write_yaml(tmp_path, {"server": {"prot": 1}})
    result = run_baas("serve", "--config", str(path), "--data-dir", str(tmp_path / "data"), timeout=30)
    assert_one_line_error(result, "'server.prot'", str(path))
    assert not (tmp_path / "data").exists()  # nothing was started or created


def test_serve_with_wrong_type_exits_with_one_line(tmp_path):
    path = write_yaml(tmp_path, {"mongodb": {"timeout_ms": "soon"}})
    result = run_baas("serve", "--config", str(path), timeout=30)
    assert_one_line_error(result, "'mongodb.timeout_ms' must be an integer")


def test_serve_with_bad_environment_value_exits_with_one_line(tmp_path):
    result = run_baas("serve", "--data-dir", str(tmp_path / "data"),
                      env=clean_env(BAAS_SERVER_WORKERS="many"), timeout=30)
    assert_one_line_error(result, "BAAS_SERVER_WORKERS")


def test_serve_reads_baas_config_variable(tmp_path):
    path = write_yaml(tmp_path, {"logging": {"level": "LOUD"}})
    result = run_baas("serve", env=clean_env(BAAS_CONFIG=str(path)), timeout=30)
    assert_one_line_error(result, "'logging.level'")


def test_serve_with_unreachable_mongodb_names_mongodb(tmp_path, s3_settings):
    closed = free_port()
    path = write_yaml(tmp_path, {"data_dir": str(tmp_path / "data"),
                                 "mongodb": {"uri": f"mongodb://127.0.0.1:{closed}/", "timeout_ms": 300},
                                 "storage": {"s3": dict(s3_settings)}})
    result = run_baas("serve", "--config", str(path), "--port", str(free_port()), timeout=60)
    line = assert_one_line_error(result, "MongoDB", f"127.0.0.1:{closed}", "unreachable")
    assert "S3" not in line


def test_serve_with_unreachable_s3_names_the_storage(tmp_path, mongo_uri):
    closed = free_port()
    path = write_yaml(tmp_path, {"data_dir": str(tmp_path / "data"),
                                 "mongodb": {"uri": mongo_uri, "db_prefix": "unreach_"},
                                 "storage": {"s3": {"endpoint": f"127.0.0.1:{closed}", "access_key": "a",
                                                    "secret_key": "b", "secure": False, "timeout_seconds": 1}}})
    result = run_baas("serve", "--config", str(path), "--port", str(free_port()), timeout=60)
    assert_one_line_error(result, "S3 storage", f"127.0.0.1:{closed}", "unreachable")


def test_secrets_file_without_jwt_secret_is_a_clear_error(tmp_path):
    from baas.runtime import load_or_create_secrets

    (tmp_path / "secrets.json").write_text(json.dumps({"other": 1}))
    with pytest.raises(ConfigError, match="has no 'jwt_secret'"):
        load_or_create_secrets(tmp_path)
