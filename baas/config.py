"""Configuration: defaults < YAML file < BAAS_* environment variables, validated once at start.

Every key is declared in SCHEMA with its type and default, so an unknown key or a wrong type is reported
by name before anything connects. config.example.yaml documents the same keys.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import yaml


class ConfigError(Exception):
    """A configuration problem, worded for the person who wrote the config."""


@dataclass(frozen=True)
class Key:
    type: type | tuple
    default: Any
    help: str = ""
    nullable: bool = False
    choices: tuple | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None


MIN_ADMIN_TOKEN_LENGTH = 16

# Nested dicts are sections; Key instances are leaves.
SCHEMA: dict[str, Any] = {
    "data_dir": Key(str, "./baas-data", "Folder for the embedded database, local files, secrets and the mail outbox."),
    "admin_token": Key(str, None, "Fixed platform admin token, at least 16 characters (accepted as given, never "
                                  "printed).", nullable=True),
    "server": {
        "host": Key(str, "127.0.0.1", "Address to listen on."),
        "port": Key(int, 8000, "Port to listen on.", minimum=0, maximum=65535),
        "workers": Key(int, 1, "Server worker processes.", minimum=1),
        "threads": Key(int, 4, "Threads per worker that run requests.", minimum=1),
        "public_url": Key(str, None, "URL clients use to reach the server (links in mails, Location headers).",
                          nullable=True),
        "max_body_bytes": Key(int, 1_048_576, "Largest accepted JSON request body in bytes.", minimum=1),
        "trusted_proxies": Key(int, 0, "Reverse proxies in front of baas whose X-Forwarded-For is trusted.",
                               minimum=0),
        "shutdown_timeout_seconds": Key(int, 5, "On stop (SIGTERM, Ctrl-C), how long workers may finish the "
                                        "requests they hold before they are killed.", minimum=1),
    },
    "mongodb": {
        "uri": Key(str, None, "MongoDB URI. Unset: an embedded nx-27017 server is started under data_dir.",
                   nullable=True),
        "db_prefix": Key(str, "baas_", "Prefix of every database name baas creates."),
        "query_time_limit_ms": Key(int, 10_000, "Longest a client query (list, count, expand, aggregate) may run "
                                   "before the database stops it and the client gets a 400.", minimum=1),
        "timeout_ms": Key(int, 2000, "How long a request waits for an unreachable MongoDB (server selection and "
                          "connect) before it gets a 503.", minimum=1),
        "retry_after_seconds": Key(int, 5, "Retry-After of the 503 answered while MongoDB is unreachable.",
                                   minimum=1),
        "embedded": {
            "ping_interval_seconds": Key((int, float), 1, "How often the embedded database is pinged (and its "
                                         "process checked).", minimum=0.05),
            "ping_deadline_seconds": Key((int, float), 5, "A ping of the embedded database not answered within "
                                         "this many seconds restarts it (on the same data folder and port).",
                                         minimum=0.1),
        },
    },
    "query": {
        "max_regex_length": Key(int, 256, "Longest '$regex' pattern a client filter may hold, in characters.",
                                minimum=1, maximum=1024),
    },
    "storage": {
        "s3": {
            "endpoint": Key(str, None, "S3/MinIO endpoint host:port. Unset: files are kept under data_dir/files.",
                            nullable=True),
            "access_key": Key(str, None, "S3 access key.", nullable=True),
            "secret_key": Key(str, None, "S3 secret key.", nullable=True),
            "bucket": Key(str, "baas", "Bucket holding every project's files (one prefix per project)."),
            "secure": Key(bool, True, "Use HTTPS to reach the S3 endpoint."),
            "region": Key(str, None, "S3 region.", nullable=True),
            "timeout_seconds": Key(int, 10, "How long to wait for the S3 endpoint to connect or answer before "
                                   "reporting it unreachable.", minimum=1),
        },
    },
    "files": {
        "max_file_bytes": Key(int, 52_428_800, "Largest file in bytes, unless a project sets its own "
                              "(settings.files.max_file_bytes).", minimum=1),
        "blocked_types": Key(list, ["application/x-executable", "application/x-msdownload",
                                    "application/vnd.microsoft.portable-executable", "application/x-dosexec",
                                    "application/x-mach-binary", "application/x-elf", "application/x-sharedlib",
                                    "application/x-shellscript", "text/x-shellscript"],
                             "Sniffed content types refused, unless a project lists its allowed types."),
        "thumbnail_sizes": Key(list, ["64x64", "200x200", "400x400", "800x800"], "Thumbnail sizes clients may "
                               "ask for (WIDTHxHEIGHT)."),
        "thumbnail_max_pixels": Key(int, 40_000_000, "Images with more pixels get no thumbnail (400): bounds the "
                                    "memory one request can make the server decode.", minimum=1),
        "thumbnail_max_bytes": Key(int, 26_214_400, "Largest original a thumbnail is made from.", minimum=1),
        "thumbnail_workers": Key(int, 1, "Thumbnails made at once per server process (on their own threads; keep "
                                 "thumbnail_workers + thumbnail_queue below server.threads).", minimum=1),
        "thumbnail_queue": Key(int, 1, "Thumbnail requests that may wait for a free renderer per process; more "
                               "get 503 with Retry-After. Cached thumbnails never wait.", minimum=0),
        "tus_expiry_hours": Key(int, 24, "Unfinished resumable (tus) uploads expire this long after creation.",
                                minimum=1),
        "direct_upload_minutes": Key(int, 60, "Presigned direct uploads must be completed within this time (their "
                                     "URLs stay valid that long; what a late PUT leaves in staging is swept 15 "
                                     "minutes after).",
                                     minimum=1),
        "presigned_seconds": Key(int, 300, "Lifetime of presigned download redirects.", minimum=1,
                                 maximum=604_800),
        "pending_grace_minutes": Key(int, 360, "An upload still unfinished after this long belongs to a dead "
                                     "process: the sweep removes what it left.", minimum=1),
        "sweep_interval_seconds": Key(int, 60, "How often background work (`baas worker`, or `baas serve` on the "
                                      "embedded default) sweeps expired uploads and orphans "
                                      "(one process at a time, by a lease in MongoDB); 0 turns it off.",
                                      minimum=0),
        "task_poll_seconds": Key((int, float), 1, "How often background work looks for due file tasks (hashing "
                                 "direct and cross-process tus uploads, deleting a deleted user's files).",
                                 minimum=0.01),
    },
    "secrets": {
        "encryption_key": Key(str, None, "Key that seals secrets kept in the database (VAPID private keys, push "
                              "provider credentials). Unset: generated once into data_dir. Every process that "
                              "shares the database needs the same one.", nullable=True),
        "previous_encryption_keys": Key(list, [], "Former encryption keys: values sealed under them still open "
                                        "and are sealed again under the current one."),
    },
    "jwt": {
        "secret": Key(str, None, "Secret that signs access tokens. Unset: generated once into data_dir.",
                      nullable=True),
        "issuer": Key(str, "baas", "The iss claim of access tokens."),
        "access_token_minutes": Key(int, 15, "Lifetime of access tokens.", minimum=1),
        "refresh_token_days": Key(int, 30, "Lifetime of a session: its refresh tokens stop working this many "
                                  "days after log-in.", minimum=1),
        "algorithm": Key(str, "HS256", "Signing algorithm of access tokens; tokens with any other alg are refused.",
                         choices=("HS256", "HS384", "HS512")),
    },
    "auth": {
        "verify_token_hours": Key(int, 24, "Lifetime of email verification links.", minimum=1),
        "reset_token_hours": Key(int, 1, "Lifetime of password reset links.", minimum=1),
        "revocation_cache_seconds": Key((int, float), 1, "How long a process trusts that an access token is not "
                                        "revoked before asking MongoDB again (at most 2).", minimum=0),
        "argon2_time_cost": Key(int, 3, "argon2id passes (RFC 9106 low-memory profile: 3).", minimum=1),
        "argon2_memory_kib": Key(int, 65536, "argon2id memory per hash in KiB (RFC 9106 low-memory profile: 65536).",
                                 minimum=8),
        "argon2_parallelism": Key(int, 4, "argon2id lanes.", minimum=1),
    },
    "keys": {
        "cache_seconds": Key((int, float), 2, "How long a process trusts a looked-up API key before asking MongoDB "
                             "again; bounds how fast a revocation reaches every process.", minimum=0),
    },
    "projects": {
        "max_import_bytes": Key(int, 1_073_741_824, "Largest project archive POST /admin/v1/projects/import "
                                "accepts, in bytes.", minimum=1),
    },
    "cors": {
        "allowed_origins": Key(list, [], "Origins allowed for every project (each project may add its own)."),
    },
    "mail": {
        "sender": Key(str, "baas <no-reply@localhost>", "Default From address."),
        "link_base_url": Key(str, None, "Base URL of the links in verification and reset mails.", nullable=True),
        "smtp": {
            "host": Key(str, None, "SMTP host. Unset: mails are written to data_dir/outbox.", nullable=True),
            "port": Key(int, 587, "SMTP port.", minimum=1),
            "security": Key(str, "starttls", "none, starttls or ssl.", choices=("none", "starttls", "ssl")),
            "username": Key(str, None, "SMTP user.", nullable=True),
            "password": Key(str, None, "SMTP password.", nullable=True),
            "timeout_seconds": Key(int, 10, "SMTP connection timeout.", minimum=1),
        },
    },
    "rate_limits": {
        "enabled": Key(bool, True, "Apply rate limits and account lockout."),
        "auth_per_ip": Key(str, "10/minute", "Limit per client IP on each auth action (signup, login, ...)."),
        "auth_per_account": Key(str, "10/minute", "Limit per account on each auth action."),
        "api_per_key": Key(str, "6000/minute", "General limit per API key on the whole client API."),
        "lockout_attempts": Key(int, 10, "Failed logins that lock an account ...", minimum=1),
        "lockout_window_minutes": Key(int, 15, "... within this many minutes ...", minimum=1),
        "lockout_minutes": Key(int, 15, "... for this many minutes.", minimum=1),
    },
    "plugins": {
        "enabled": Key(list, [], "Plugins that run for every project: entry point, folder plugin or module names."),
        "blocked": Key(list, [], "Plugins never to load, even when installed."),
        "modules": Key(list, [], "Importable modules to offer as plugins (enabled per project through the admin "
                       "API)."),
        "folders": Key(list, None, "Folders whose modules and packages are plugins. Unset: the bundled plugins "
                       "(audit_log, webhooks, cleanup).", nullable=True),
        "strict": Key(bool, False, "Fail start-up when a plugin fails to import or validate (default: log it, "
                      "list it with its error and leave it out)."),
        "slow_hook_ms": Key(int, 200, "Log a hook, function or job step slower than this (with plugin and "
                            "duration).", minimum=1),
        "settings": Key(dict, {}, "Operator settings per plugin ({plugin: {...}}), e.g. networks webhooks may "
                        "reach."),
    },
    "push": {
        "vapid_subject": Key(str, "mailto:admin@localhost", "Contact sent to push services in every VAPID token: a "
                             "mailto: or https: URL where they can reach the operator."),
        "allow_http_hosts": Key(list, [], "Hosts whose push endpoints, and FCM/APNs base and token URLs, may be "
                                "plain http and may be on a private, loopback or link-local address (tests, "
                                "on-premise push services); every other one must be https to a public address."),
        "batch_size": Key(int, 500, "Subscriptions per delivery batch (the unit a worker claims).", minimum=1,
                          maximum=5000),
        "senders": Key(int, 256, "Deliveries in flight at once per batch a worker sends (Web Push carries them on "
                       "one event loop; at most this many are unconfirmed when a worker dies).", minimum=1,
                       maximum=1024),
        "sender_threads": Key(int, 32, "Threads for providers that send one delivery per thread (FCM); they "
                              "work off the batch's window of push.senders that many at a time.",
                              minimum=1, maximum=512),
        "max_subscriptions_per_user": Key(int, 100, "Web Push subscriptions and native devices one user keeps, "
                                          "together; a new one beyond that drops the user's least recently "
                                          "updated.", minimum=1, maximum=10000),
        "max_attempts": Key(int, 5, "Tries per subscription on 429, 5xx and connection errors.", minimum=1,
                            maximum=20),
        "retry_base_seconds": Key((int, float), 5, "First retry delay; it doubles each attempt (with jitter).",
                                  minimum=0),
        "retry_max_seconds": Key((int, float), 900, "Longest retry delay, also the cap on a Retry-After.",
                                 minimum=0),
        "lease_seconds": Key((int, float), 60, "How long a worker holds a claimed batch without progress before "
                             "another worker takes it over.", minimum=1),
        "resend_unconfirmed": Key(bool, False, "When a worker dies, resend the deliveries whose request was in "
                                  "flight (at most push.senders per batch; at-least-once: a device may get it "
                                  "twice) instead of recording them unconfirmed (at-most-once)."),
        "poll_seconds": Key((int, float), 1, "How often a worker looks for due push work.", minimum=0.01),
        "request_timeout_seconds": Key((int, float), 10, "Timeout of one request to a push service.", minimum=0.1),
        "retention_days": Key(int, 30, "Days messages and their delivery results are kept.", minimum=1),
        "native_ca_file": Key(str, None, "PEM file of the certificate authorities trusted for FCM and APNs "
                              "connections (an on-premise gateway, tests); default: the system's store.",
                              nullable=True),
    },
    "worker": {
        "run_in_serve": Key(str, "auto", "Where background work (push delivery, plugin jobs, file sweeps) runs: "
                            "'auto' runs it inside `baas serve` on the embedded default and leaves it to "
                            "`baas worker` processes when mongodb.uri is set; 'always' or 'never' decide outright.",
                            choices=("auto", "always", "never")),
    },
    "jobs": {
        "lease_seconds": Key(int, 60, "How long a job run's lease lasts; a worker renews it while the job runs, "
                             "so a killed worker's run is taken over this long after its last renewal.",
                             minimum=2),
        "history_days": Key(int, 14, "How long finished job runs are kept in the run history.", minimum=1),
    },
    "logging": {
        "level": Key(str, "INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
        "format": Key(str, "text", "Log line format: 'json' (one JSON object a line, for log shippers) or 'text'.",
                      choices=("json", "text")),
        "access": Key(bool, True, "Write one access log line per request (request id, project, route template, "
                      "status, duration, user id; never keys, tokens, paths or bodies)."),
    },
    "metrics": {
        "enabled": Key(bool, True, "Serve Prometheus metrics at /metrics."),
        "token": Key(str, None, "Bearer token that may read /metrics (for the scraper), besides the admin token. "
                     "At least 16 characters.", nullable=True),
        "dir": Key(str, None, "Folder where `baas serve` workers share metric values (emptied at start). Unset: "
                   "data_dir/metrics.", nullable=True),
    },
}


def _walk(schema: dict, prefix: str = ""):
    for name, value in schema.items():
        path = f"{prefix}{name}"
        if isinstance(value, Key):
            yield path, value
        else:
            yield from _walk(value, path + ".")


KEYS: dict[str, Key] = dict(_walk(SCHEMA))
ENV_NAMES: dict[str, str] = {"BAAS_" + path.replace(".", "_").upper(): path for path in KEYS}


def defaults() -> dict:
    config: dict = {}
    for path, key in KEYS.items():
        _set(config, path, copy.deepcopy(key.default))
    return config


def _set(config: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        config = config.setdefault(part, {})
    config[leaf] = value


def get(config: dict, path: str) -> Any:
    for part in path.split("."):
        config = config[part]
    return config


def _type_name(expected) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list", float: "a number",
             dict: "a mapping"}
    if isinstance(expected, tuple):
        return "a number"
    return names.get(expected, expected.__name__)


def _check_value(path: str, key: Key, value: Any) -> Any:
    if value is None:
        if key.nullable:
            return None
        raise ConfigError(f"config key '{path}' must be {_type_name(key.type)}, not empty")
    expected = key.type
    ok = isinstance(value, expected) and not (expected in (int, (int, float)) and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"config key '{path}' must be {_type_name(expected)}, got {value!r}")
    if key.choices and value not in key.choices:
        raise ConfigError(f"config key '{path}' must be one of {', '.join(key.choices)}, got {value!r}")
    if key.minimum is not None and value < key.minimum:
        raise ConfigError(f"config key '{path}' must be at least {key.minimum}, got {value!r}")
    if key.maximum is not None and value > key.maximum:
        raise ConfigError(f"config key '{path}' must be at most {key.maximum}, got {value!r}")
    if expected is list:
        # Every list key holds names or origins; anything else would fail later, far from the config.
        for item in value:
            if not isinstance(item, str) or not item:
                raise ConfigError(f"config key '{path}' must list non-empty strings, got {item!r}")
    return value


def _from_env_string(path: str, key: Key, raw: str) -> Any:
    expected = key.type
    if raw == "" and key.nullable:
        return None
    try:
        if expected is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if expected is int:
            return int(raw)
        if expected == (int, float):
            return float(raw)
        if expected is dict:
            import json
            return json.loads(raw)
        if expected is list:
            return [item.strip() for item in raw.split(",") if item.strip()]
    except ValueError:
        env = "BAAS_" + path.replace(".", "_").upper()
        raise ConfigError(f"environment variable {env} (config key '{path}') must be {_type_name(expected)}, "
                          f"got {raw!r}") from None
    return raw


def _merge_file(config: dict, data: Any, source: str, prefix: str = "", schema: dict = SCHEMA) -> None:
    if not isinstance(data, dict):
        where = f"section '{prefix.rstrip('.')}'" if prefix else "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping of keys")
    for name, value in data.items():
        path = f"{prefix}{name}"
        spec = schema.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ConfigError(f"{source}: unknown config key '{path}'")
        if isinstance(spec, Key):
            _set(config, path, _check_value(path, spec, value))
        else:
            _merge_file(config, value if value is not None else {}, source, path + ".", spec)


def load(path: str | os.PathLike | None = None, env: dict | None = None, overrides: dict | None = None) -> dict:
    """Build the validated configuration.

    `overrides` are flat dotted keys (from command-line options); they win over everything else.
    """
    env = os.environ if env is None else env
    config = defaults()
    path = path or env.get("BAAS_CONFIG")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if data is not None:
            _merge_file(config, data, str(path))
    for env_name, key_path in ENV_NAMES.items():
        if env_name in env:
            key = KEYS[key_path]
            _set(config, key_path, _check_value(key_path, key, _from_env_string(key_path, key, env[env_name])))
    for key_path, value in (overrides or {}).items():
        if key_path not in KEYS:
            raise ConfigError(f"unknown config key '{key_path}'")
        _set(config, key_path, _check_value(key_path, KEYS[key_path], value))
    return validate(config)


def from_mapping(data: dict | None) -> dict:
    """Validate a nested mapping (as create_app receives it) on top of the defaults."""
    config = defaults()
    if data:
        _merge_file(config, data, "config")
    return validate(config)


def validate(config: dict) -> dict:
    s3 = config["storage"]["s3"]
    if s3["endpoint"] and not (s3["access_key"] and s3["secret_key"]):
        raise ConfigError("config keys 'storage.s3.access_key' and 'storage.s3.secret_key' are required "
                          "when 'storage.s3.endpoint' is set")
    prefix = config["mongodb"]["db_prefix"]
    if not prefix.replace("_", "").replace("-", "").isalnum() or len(prefix) > 20:
        raise ConfigError("config key 'mongodb.db_prefix' may hold only letters, digits, '_' and '-' "
                          "(at most 20 characters)")
    _validate_auth(config)
    _validate_files(config)
    for plugin, settings in config["plugins"]["settings"].items():
        if not isinstance(settings, dict):
            raise ConfigError(f"config key 'plugins.settings.{plugin}' must be a mapping of that plugin's settings")
    token = config["admin_token"]
    if token is not None and len(token) < MIN_ADMIN_TOKEN_LENGTH:
        # The admin token opens every project; a short one can be guessed.
        raise ConfigError(f"config key 'admin_token' must be at least {MIN_ADMIN_TOKEN_LENGTH} characters")
    return config


def _validate_auth(config: dict) -> None:
    import limits

    for name in ("auth_per_ip", "auth_per_account", "api_per_key"):
        value = config["rate_limits"][name]
        try:
            limits.parse(value)
        except ValueError:
            raise ConfigError(f"config key 'rate_limits.{name}' must be a rate like '10/minute' or "
                              f"'100 per hour', got {value!r}") from None
    if config["auth"]["revocation_cache_seconds"] > 2:
        raise ConfigError("config key 'auth.revocation_cache_seconds' must be at most 2, so a revoked token is "
                          "refused by every process within seconds")
    if config["auth"]["argon2_memory_kib"] < 8 * config["auth"]["argon2_parallelism"]:
        raise ConfigError("config key 'auth.argon2_memory_kib' must be at least 8 x 'auth.argon2_parallelism'")
    link = config["mail"]["link_base_url"]
    if link and not link.startswith(("http://", "https://")):
        raise ConfigError(f"config key 'mail.link_base_url' must start with http:// or https://, got {link!r}")


def _validate_files(config: dict) -> None:
    import re

    for size in config["files"]["thumbnail_sizes"]:
        if not re.match(r"^[1-9][0-9]{0,3}x[1-9][0-9]{0,3}$", size):
            raise ConfigError(f"config key 'files.thumbnail_sizes' lists WIDTHxHEIGHT sizes below 10000, got {size!r}")
