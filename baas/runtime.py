"""What a server needs before it can take requests: its data folder, its secrets, its database.

`resolve()` turns a validated config into one that names a reachable MongoDB (starting the embedded one
when none is configured) and holds every secret; `bootstrap()` prepares indexes and, on a first start,
the default project with its keys.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from baas.config import ConfigError
from baas.storage.embedded import EmbeddedMongo

SECRETS_FILE = "secrets.json"
ENCRYPTION_KEY_FILE = "encryption.key"
DEFAULT_PROJECT = "default"


def data_dir(config: dict) -> Path:
    return Path(config["data_dir"]).expanduser().resolve()


def load_or_create_secrets(folder: Path) -> dict:
    """Secrets generated once per data folder, readable only by their owner (0600)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / SECRETS_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            with open(path, encoding="utf-8") as handle:
                stored = json.load(handle)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the secrets file {path}: {exc}") from None
        if not isinstance(stored, dict) or not isinstance(stored.get("jwt_secret"), str):
            raise ConfigError(f"the secrets file {path} has no 'jwt_secret'; restore it from a backup, or delete "
                              f"it to generate new secrets (signing out every user)")
        return stored
    generated = {"jwt_secret": secrets.token_urlsafe(48)}
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(generated, handle)
    return generated


def load_or_create_encryption_key(folder: Path) -> str:
    """The generated secrets.encryption_key of this data folder (its own file: folders made before it existed
    have a secrets.json without it). Written whole under a temporary name and linked into place, so processes
    starting together agree on one key and none reads a half-written file."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / ENCRYPTION_KEY_FILE
    if not path.exists():
        temporary = folder / f".{ENCRYPTION_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(32))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            temporary.unlink()
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the encryption key file {path}: {exc}") from None
    if not key:
        raise ConfigError(f"the encryption key file {path} is empty; restore it from a backup (the push keys "
                          f"sealed under it cannot be opened without it)")
    return key


def resolve(config: dict) -> tuple[dict, EmbeddedMongo | None]:
    """Fill in the secrets and the MongoDB URI; returns the embedded server it started, if any."""
    config = json.loads(json.dumps(config))  # a private deep copy
    embedded = None
    needs_folder = not config["jwt"]["secret"] or not config["mongodb"]["uri"] \
        or not config["storage"]["s3"]["endpoint"] or not config["secrets"]["encryption_key"]
    folder = data_dir(config)
    if needs_folder:
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"cannot create the data folder {folder} (config key 'data_dir'): {exc}") from None
        config["data_dir"] = str(folder)
    if not config["jwt"]["secret"]:
        config["jwt"]["secret"] = load_or_create_secrets(folder)["jwt_secret"]
    if not config["secrets"]["encryption_key"]:
        config["secrets"]["encryption_key"] = load_or_create_encryption_key(folder)
    if not config["mongodb"]["uri"]:
        try:
            embedded = EmbeddedMongo(folder / "db").start()
        except RuntimeError as exc:
            raise ConfigError(str(exc)) from None
        config["mongodb"]["uri"] = embedded.uri
        watch = config["mongodb"]["embedded"]
        embedded.watch(watch["ping_interval_seconds"], watch["ping_deadline_seconds"],
                       on_restart=lambda reason: record_database_restart(config, reason))
    return config, embedded


EMBEDDED_DATABASE_STATS = "embedded_database"  # the _id of the restart counter in the platform `meta` collection


def record_database_restart(config: dict, reason: str) -> None:
    """Count a restart of the embedded database where every process (and a /metrics) can read it."""
    from baas.storage.mongo import MongoStore

    mongo = MongoStore(config["mongodb"]["uri"], config["mongodb"]["db_prefix"], config["mongodb"]["timeout_ms"])
    try:
        # $currentDate, not $set of a datetime: nx-27017 would store the date of an existing document as a string.
        mongo.platform["meta"].update_one(
            {"_id": EMBEDDED_DATABASE_STATS},
            {"$inc": {"restarts": 1}, "$set": {"last_restart_reason": reason},
             "$currentDate": {"last_restart_at": True}},
            upsert=True)
    finally:
        mongo.close()


def database_restarts(mongo) -> int:
    """How often the watchdog has restarted the embedded database on this data folder."""
    stats = mongo.platform["meta"].find_one({"_id": EMBEDDED_DATABASE_STATS}) or {}
    return int(stats.get("restarts", 0))


def check_services(svc) -> None:
    """Fail with one clear line naming the service that does not answer."""
    for probe in (svc.mongo.ping, svc.blobs.ping):
        try:
            probe()
        except ConnectionError as exc:
            raise ConfigError(str(exc)) from None


@dataclass
class BootstrapReport:
    first_start: bool
    project_id: str | None = None
    client_key: str | None = None
    server_key: str | None = None
    admin_token: str | None = None
    notes: list = field(default_factory=list)


def ensure_indexes(svc) -> None:
    svc.projects.ensure_indexes()
    svc.keys.ensure_indexes()
    svc.admin.ensure_indexes()
    for feature in (svc.auth, svc.limiter, svc.documents, *svc.extra.values()):
        if feature is not None and hasattr(feature, "ensure_indexes"):
            feature.ensure_indexes()


def bootstrap(svc, reset_admin_token: bool = False) -> BootstrapReport:
    ensure_indexes(svc)
    meta = svc.mongo.platform["meta"]
    first = meta.find_one({"_id": "bootstrap"}) is None
    report = BootstrapReport(first_start=first)
    configured_token = bool(svc.config["admin_token"])
    if first:
        try:
            svc.projects.get(DEFAULT_PROJECT)
        except Exception:
            svc.projects.create(DEFAULT_PROJECT, "Default project")
        report.project_id = DEFAULT_PROJECT
        report.client_key = svc.keys.create(DEFAULT_PROJECT, "client", "default client key")[1]
        report.server_key = svc.keys.create(DEFAULT_PROJECT, "server", "default server key")[1]
        if not configured_token:
            report.admin_token = svc.admin.create("first start")
        from baas.util import utcnow

        meta.update_one({"_id": "bootstrap"}, {"$set": {"at": utcnow()}}, upsert=True)
    elif reset_admin_token:
        svc.admin.revoke_all()
        report.admin_token = svc.admin.create("reset")
    return report
