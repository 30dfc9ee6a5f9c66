"""`baas doctor`'s checks of a configuration: each finding says what is wrong and how to fix it.

The checks run where the server would run (same config, same network), connect with short timeouts and change
nothing: no bucket is created, no mail is sent, the embedded database is not started.
"""
from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "fail"
STRONG_SECRET_LENGTH = 32
CLOCK_WARN_SECONDS = 2
CLOCK_FAIL_SECONDS = 30  # access tokens live minutes: beyond this, hosts disagree about which are valid


@dataclass
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _secret_strength(value: str) -> str | None:
    """Why a secret is weak, or None."""
    if len(value) < STRONG_SECRET_LENGTH:
        return f"it has {len(value)} characters, fewer than {STRONG_SECRET_LENGTH}"
    if len(set(value)) < 10:
        return f"it uses only {len(set(value))} different characters"
    return None


GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def check_secrets(config: dict) -> list[Finding]:
    findings = []
    token = config["admin_token"]
    if token is None:
        findings.append(Finding("admin token", OK, "no fixed token: generated admin tokens are stored hashed"))
    else:
        weak = _secret_strength(token)
        findings.append(Finding("admin token", FAIL, f"admin_token is weak: {weak}",
                                f"set admin_token (BAAS_ADMIN_TOKEN) to the output of {GENERATE}") if weak
                        else Finding("admin token", OK, "fixed admin token is long and varied"))
    secret = config["jwt"]["secret"]
    if secret is None:
        if config["mongodb"]["uri"]:
            findings.append(Finding("jwt secret", FAIL, "jwt.secret is unset: every host would sign tokens with "
                                    "its own generated secret, so tokens from one host fail on the others",
                                    f"set the same jwt.secret (BAAS_JWT_SECRET) on every host, e.g. {GENERATE}"))
        else:
            findings.append(Finding("jwt secret", OK, "generated once into the data folder (one host)"))
    else:
        weak = _secret_strength(secret)
        findings.append(Finding("jwt secret", FAIL, f"jwt.secret is weak: {weak}", f"use the output of {GENERATE}")
                        if weak else Finding("jwt secret", OK, "set, long and varied"))
    metrics_token = config["metrics"]["token"]
    if metrics_token is not None and len(metrics_token) < 16:
        findings.append(Finding("metrics token", FAIL, f"metrics.token has {len(metrics_token)} characters",
                                f"use at least 16 characters, e.g. {GENERATE}"))
    return findings


def check_mongodb(config: dict) -> list[Finding]:
    from pymongo.errors import PyMongoError

    from baas.storage.mongo import MongoStore, redact_uri

    uri = config["mongodb"]["uri"]
    if not uri:
        return [Finding("mongodb", WARN, "mongodb.uri is unset: the embedded database serves this one host only",
                        "for production or several hosts, point mongodb.uri (BAAS_MONGODB_URI) at a MongoDB "
                        "replica set")]
    store = MongoStore(uri, config["mongodb"]["db_prefix"], config["mongodb"]["timeout_ms"])
    findings = []
    try:
        try:
            store.ping()
        except ConnectionError as exc:
            return [Finding("mongodb", FAIL, str(exc), "check mongodb.uri, that MongoDB runs, and the network "
                                                       "(firewall, TLS, credentials)")]
        sent = time.time()
        hello = store.client.admin.command("hello")
        received = time.time()
        try:
            version = store.client.admin.command("buildInfo").get("version", "unknown")
        except PyMongoError:
            version = "unknown"
        findings.append(Finding("mongodb", OK, f"{redact_uri(uri)} answers (version {version})"))
        if hello.get("setName"):
            findings.append(Finding("replica set", OK, f"member of replica set '{hello['setName']}'"))
        else:
            findings.append(Finding("replica set", WARN, "MongoDB is a standalone server: no failover, and a "
                                    "crash can lose the last writes",
                                    "run a replica set (one member is enough to start: rs.initiate()) and add "
                                    "?replicaSet=NAME to mongodb.uri"))
        findings.append(_clock_finding(hello.get("localTime"), (sent + received) / 2))
    except PyMongoError as exc:
        findings.append(Finding("mongodb", FAIL, f"MongoDB refused a command: {str(exc).split(', full error')[0]}",
                                "give the user in mongodb.uri the readWriteAnyDatabase and clusterMonitor roles"))
    finally:
        store.close()
    return findings


def _clock_finding(server_time, local_epoch: float) -> Finding:
    if not isinstance(server_time, datetime):
        return Finding("clock", WARN, "MongoDB did not report its time, so the clock could not be compared",
                       "keep every host's clock synchronised with NTP (chrony, systemd-timesyncd)")
    if server_time.tzinfo is None:
        server_time = server_time.replace(tzinfo=timezone.utc)
    skew = abs(server_time.timestamp() - local_epoch)
    if skew > CLOCK_FAIL_SECONDS:
        return Finding("clock", FAIL, f"this host's clock is {skew:.0f}s off MongoDB's: tokens, leases and "
                       "expiries go wrong", "synchronise both clocks with NTP (chrony, systemd-timesyncd)")
    if skew > CLOCK_WARN_SECONDS:
        return Finding("clock", WARN, f"this host's clock is {skew:.1f}s off MongoDB's",
                       "synchronise both clocks with NTP (chrony, systemd-timesyncd)")
    return Finding("clock", OK, f"within {CLOCK_WARN_SECONDS}s of MongoDB's")


def check_storage(config: dict) -> list[Finding]:
    s3 = config["storage"]["s3"]
    if not s3["endpoint"]:
        folder = Path(config["data_dir"]) / "files"
        probe = folder if folder.exists() else Path(config["data_dir"])
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        import os

        if not os.access(probe, os.W_OK):
            return [Finding("storage", FAIL, f"files go to {folder}, but {probe} is not writable",
                            "make data_dir writable by the user running baas, or set storage.s3.endpoint")]
        detail = f"files are kept under {folder}"
        if config["mongodb"]["uri"]:
            return [Finding("storage", WARN, detail + ", which other hosts cannot see",
                            "with several hosts set storage.s3.endpoint (MinIO or S3)")]
        return [Finding("storage", OK, detail)]
    if not s3["access_key"] or not s3["secret_key"]:
        return [Finding("storage", FAIL, "storage.s3.endpoint is set without access_key and secret_key",
                        "set storage.s3.access_key and storage.s3.secret_key (BAAS_STORAGE_S3_*)")]
    from minio import Minio
    from minio.error import S3Error

    from baas.storage.blobs_s3 import _split_endpoint

    host, secure = _split_endpoint(s3["endpoint"], s3["secure"])
    client = Minio(host, access_key=s3["access_key"], secret_key=s3["secret_key"], secure=secure,
                   region=s3["region"], http_client=_short_http(s3["timeout_seconds"]))
    try:
        exists = client.bucket_exists(s3["bucket"])
    except S3Error as exc:
        return [Finding("storage", FAIL, f"S3 at {s3['endpoint']} refused the request: {exc.code}",
                        "check storage.s3.access_key/secret_key and the bucket policy")]
    except Exception as exc:  # minio raises urllib3 errors for network failures
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        return [Finding("storage", FAIL, f"S3 at {s3['endpoint']} is unreachable: {reason}",
                        "check storage.s3.endpoint, storage.s3.secure and the network")]
    if not exists:
        return [Finding("storage", WARN, f"S3 at {s3['endpoint']} answers; bucket '{s3['bucket']}' does not exist "
                        "yet", "baas creates it on first use; create it yourself if the key may not")]
    return [Finding("storage", OK, f"S3 at {s3['endpoint']} answers, bucket '{s3['bucket']}' exists")]


def _short_http(timeout_seconds: int):
    import urllib3

    return urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds),
                               retries=urllib3.Retry(total=0))


def check_smtp(config: dict) -> list[Finding]:
    smtp = config["mail"]["smtp"]
    if not smtp["host"]:
        return [Finding("smtp", WARN, "mail.smtp.host is unset: verification and reset mails are only written "
                        "to data_dir/outbox", "set mail.smtp.host, port, security, username and password")]
    where = f"{smtp['host']}:{smtp['port']}"
    try:
        context = ssl.create_default_context()
        if smtp["security"] == "ssl":
            connection = smtplib.SMTP_SSL(smtp["host"], smtp["port"], timeout=smtp["timeout_seconds"],
                                          context=context)
        else:
            connection = smtplib.SMTP(smtp["host"], smtp["port"], timeout=smtp["timeout_seconds"])
        with connection:
            connection.ehlo()
            if smtp["security"] == "starttls":
                connection.starttls(context=context)
                connection.ehlo()
            if smtp["username"]:
                connection.login(smtp["username"], smtp["password"] or "")
    except smtplib.SMTPAuthenticationError:
        return [Finding("smtp", FAIL, f"SMTP at {where} refused the username and password",
                        "check mail.smtp.username and mail.smtp.password")]
    except smtplib.SMTPNotSupportedError:
        return [Finding("smtp", FAIL, f"SMTP at {where} does not offer STARTTLS",
                        "set mail.smtp.security to ssl (usually port 465) or none (only on a trusted network)")]
    except (OSError, smtplib.SMTPException) as exc:
        return [Finding("smtp", FAIL, f"SMTP at {where} is unreachable: {exc.__class__.__name__}: {exc}",
                        "check mail.smtp.host, port and security, and the network")]
    return [Finding("smtp", OK, f"SMTP at {where} answers" + (" and accepts the login" if smtp["username"] else ""))]


def run_checks(config: dict) -> list[Finding]:
    findings = [Finding("config", OK, "valid")]
    for check in (check_secrets, check_mongodb, check_storage, check_smtp):
        findings.extend(check(config))
    return findings
