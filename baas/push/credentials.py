"""Per-project credentials of the native push services: an FCM service account and an APNs token-signing key.

Stored in the platform collection `push_credentials`, one document per (project, provider). The private key is
sealed (baas.sealing, under secrets.encryption_key) with the project, provider and revision as its context, so a
sealed key copied to another project or provider does not open. After an encryption-key change (the former key in
secrets.previous_encryption_keys) they are sealed again under the new key at start and on first use. Only the public parts (ids, e-mail, bundle id,
URLs) are ever shown. Each save makes a new revision: providers key their
caches (access tokens, provider JWTs, HTTP/2 connections) on it, so new credentials are used at once.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from baas.egress import is_forbidden_literal
from baas.errors import Invalid, NotFound
from baas.sealing import SealError
from baas.util import TTLCache, new_id, utcnow

log = logging.getLogger("baas.push")

PROVIDERS = ("fcm", "apns")
FCM_BASE_URL = "https://fcm.googleapis.com"
FCM_TOKEN_URL = "https://oauth2.googleapis.com/token"
APNS_BASE_URLS = {"production": "https://api.push.apple.com", "sandbox": "https://api.sandbox.push.apple.com"}
CACHE_SECONDS = 10          # how soon other processes see changed credentials
MAX_URL_LENGTH = 512
MAX_KEY_PEM = 8192

FIREBASE_PROJECT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,255}$")
HEX_ID = re.compile(r"^[0-9a-fA-F]{1,64}$")
APPLE_ID = re.compile(r"^[A-Z0-9]{10}$")          # key ids and team ids are 10 characters
BUNDLE_ID = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass(frozen=True, slots=True)
class FcmCredential:
    project_id: str              # the baas project
    revision: str
    firebase_project: str
    client_email: str
    private_key_id: str | None
    private_key: rsa.RSAPrivateKey
    token_url: str
    base_url: str


@dataclass(frozen=True, slots=True)
class ApnsCredential:
    project_id: str
    revision: str
    key_id: str
    team_id: str
    bundle_id: str
    environment: str
    private_key: ec.EllipticCurvePrivateKey
    base_url: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Stored credentials that do not open (sealed under a key this process lacks, altered, or not a key):
    what providers fail the project's deliveries with, instead of raising per delivery."""
    project_id: str
    provider: str
    reason: str


SET_AGAIN = {"fcm": "`baas push credentials set PROJECT fcm FILE.json`",
             "apns": "`baas push credentials set PROJECT apns ...`"}


def _invalid(field: str, message: str):
    return Invalid(message, errors={field: [message]})


def _aad(project_id: str, provider: str, revision: str) -> bytes:
    return f"push-credentials/{project_id}/{provider}/{revision}".encode()


class NativeCredentials:
    def __init__(self, mongo, projects, sealer, allowed_http_hosts=frozenset()):
        self.projects = projects
        self.collection = mongo.platform["push_credentials"]
        self.sealer = sealer                              # baas.sealing.Sealer
        self.allowed_http_hosts = frozenset(h.lower() for h in allowed_http_hosts)
        self._cache = TTLCache(CACHE_SECONDS)
        self._warned = TTLCache(CACHE_SECONDS)
        self._lock = threading.Lock()

    # ---- validation

    def check_url(self, value, field: str) -> str:
        """An https base URL (plain http only for push.allow_http_hosts), without path tricks or credentials."""
        if not isinstance(value, str) or not value or len(value) > MAX_URL_LENGTH:
            raise _invalid(field, f"{field} is a URL of at most {MAX_URL_LENGTH} characters.")
        try:
            parts = urlsplit(value)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise _invalid(field, f"{field} is not a valid URL.") from None
        if not host or parts.username is not None or parts.password is not None or parts.query or parts.fragment \
                or any(ord(c) < 33 or ord(c) > 126 for c in value):
            raise _invalid(field, f"{field} must be an absolute URL without credentials, query or fragment.")
        if parts.scheme != "https" and not (parts.scheme == "http" and host in self.allowed_http_hosts):
            raise _invalid(field, f"{field} must be an https URL.")
        # A name is checked by what it resolves to when deliveries connect (baas.egress); a literal can be now.
        if is_forbidden_literal(host) and host not in self.allowed_http_hosts:
            raise _invalid(field, f"{field} may not point at a private, loopback or link-local address "
                                  "(only hosts in push.allow_http_hosts may).")
        return value.rstrip("/")

    @staticmethod
    def _load_key(pem, field: str, kind: type, what: str):
        if not isinstance(pem, str) or not pem.strip() or len(pem) > MAX_KEY_PEM:
            raise _invalid(field, f"{field} must be the PEM text of {what}.")
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            raise _invalid(field, f"{field} is not a readable PEM private key ({what}).") from None
        if not isinstance(key, kind):
            raise _invalid(field, f"{field} must be {what}.")
        return key

    def _check_fcm(self, body: dict) -> tuple[dict, bytes]:
        unknown = set(body) - {"service_account", "base_url", "token_url"}
        if unknown:
            raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.",
                          errors={name: ["Unknown field."] for name in sorted(unknown)})
        account = body.get("service_account")
        if not isinstance(account, dict):
            raise _invalid("service_account", "service_account is the Google service-account JSON (an object) "
                                              "downloaded from the Firebase console.")
        if account.get("type") != "service_account":
            raise _invalid("service_account.type", "service_account.type must be 'service_account'.")
        firebase_project = account.get("project_id")
        if not isinstance(firebase_project, str) or not FIREBASE_PROJECT.match(firebase_project):
            raise _invalid("service_account.project_id", "service_account.project_id must be a Firebase project id.")
        email = account.get("client_email")
        if not isinstance(email, str) or not EMAIL.match(email):
            raise _invalid("service_account.client_email", "service_account.client_email must be an e-mail address.")
        key_id = account.get("private_key_id")
        if key_id is not None and (not isinstance(key_id, str) or not HEX_ID.match(key_id)):
            raise _invalid("service_account.private_key_id", "service_account.private_key_id must be hexadecimal.")
        self._load_key(account.get("private_key"), "service_account.private_key", rsa.RSAPrivateKey, "an RSA key")
        token_url = body.get("token_url") or account.get("token_uri") or FCM_TOKEN_URL
        public = {"firebase_project": firebase_project, "client_email": email, "private_key_id": key_id,
                  "token_url": self.check_url(token_url, "token_url"),
                  "base_url": self.check_url(body.get("base_url") or FCM_BASE_URL, "base_url")}
        return public, account["private_key"].encode()

    def _check_apns(self, body: dict) -> tuple[dict, bytes]:
        unknown = set(body) - {"key", "key_id", "team_id", "bundle_id", "environment", "base_url"}
        if unknown:
            raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.",
                          errors={name: ["Unknown field."] for name in sorted(unknown)})
        self._load_key(body.get("key"), "key", ec.EllipticCurvePrivateKey, "the .p8 key (P-256) from Apple")
        for field, pattern, what in (("key_id", APPLE_ID, "10 capital letters or digits"),
                                     ("team_id", APPLE_ID, "10 capital letters or digits")):
            if not isinstance(body.get(field), str) or not pattern.match(body[field]):
                raise _invalid(field, f"{field} is {what}, as Apple's developer account shows it.")
        bundle_id = body.get("bundle_id")
        if not isinstance(bundle_id, str) or len(bundle_id) > 155 or not BUNDLE_ID.match(bundle_id):
            raise _invalid("bundle_id", "bundle_id is the app's bundle identifier, e.g. com.example.app.")
        environment = body.get("environment", "production")
        if environment not in APNS_BASE_URLS:
            raise _invalid("environment", "environment is 'production' or 'sandbox' (development builds).")
        public = {"key_id": body["key_id"], "team_id": body["team_id"], "bundle_id": bundle_id,
                  "environment": environment,
                  "base_url": self.check_url(body.get("base_url") or APNS_BASE_URLS[environment], "base_url")}
        return public, body["key"].encode()

    # ---- admin operations

    def save(self, project_id: str, provider: str, body) -> dict:
        if provider not in PROVIDERS:
            raise NotFound(f"No push provider '{provider}'; use one of {', '.join(PROVIDERS)}.")
        self.projects.get(project_id)
        if not isinstance(body, dict):
            raise Invalid("Send a JSON object.")
        public, secret = self._check_fcm(body) if provider == "fcm" else self._check_apns(body)
        revision = new_id("pc_")
        doc = {"_id": f"{project_id}/{provider}", "project_id": project_id, "provider": provider,
               "revision": revision, "public": public, "updated_at": utcnow(),
               "sealed": self.sealer.seal(secret, _aad(project_id, provider, revision))}
        self.collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        self._cache.discard((project_id, provider))
        return describe(doc)

    def describe_all(self, project_id: str) -> list[dict]:
        self.projects.get(project_id)
        docs = self.collection.find({"project_id": project_id}, {"sealed": 0})
        return sorted((describe(d) for d in docs), key=lambda d: d["provider"])

    def delete(self, project_id: str, provider: str) -> None:
        if provider not in PROVIDERS:
            raise NotFound(f"No push provider '{provider}'; use one of {', '.join(PROVIDERS)}.")
        self.projects.get(project_id)
        if self.collection.delete_one({"_id": f"{project_id}/{provider}"}).deleted_count == 0:
            raise NotFound(f"Project '{project_id}' has no {provider} credentials.")
        self._cache.discard((project_id, provider))

    def _reseal(self, doc: dict, secret: bytes) -> bool:
        """Seal `secret` again under the current encryption key when `doc` is under a previous one, so the
        previous key can be dropped from secrets.previous_encryption_keys later. Same revision: the contents
        did not change, so providers keep their tokens and connections."""
        if not self.sealer.needs_reseal(doc["sealed"]):
            return False
        sealed = self.sealer.seal(secret, _aad(doc["project_id"], doc["provider"], doc["revision"]))
        # Guarded by the value read: a save meanwhile wins.
        return self.collection.update_one({"_id": doc["_id"], "revision": doc["revision"], "sealed": doc["sealed"]},
                                          {"$set": {"sealed": sealed}}).matched_count == 1

    def migrate(self) -> int:
        """At start: seal every stored credential under the current encryption key (after a key change)."""
        changed = 0
        for doc in self.collection.find({}):
            if not self.sealer.needs_reseal(doc.get("sealed")):
                continue
            try:
                secret = self.sealer.open(doc["sealed"], _aad(doc["project_id"], doc["provider"], doc["revision"]))
            except (SealError, KeyError):
                continue    # left as it is: its deliveries fail with the reason (see load)
            changed += self._reseal(doc, secret)
        return changed

    def forget(self, project_id: str) -> None:
        self.collection.delete_many({"project_id": project_id})
        for provider in PROVIDERS:
            self._cache.discard((project_id, provider))

    # ---- what providers use

    def load(self, project_id: str, provider: str) -> FcmCredential | ApnsCredential | Unreadable | None:
        """The opened credential, cached a few seconds (a miss is cached too: no read per delivery)."""
        key = (project_id, provider)
        found = self._cache.get(key)
        if found is not None:
            return found or None
        doc = self.collection.find_one({"_id": f"{project_id}/{provider}"})
        credential = self._open_or_unreadable(doc) if doc is not None else None
        with self._lock:
            self._cache.set(key, credential or False)
        return credential

    def _open_or_unreadable(self, doc: dict):
        try:
            return self._open(doc)
        except SealError as exc:
            why = f"cannot be opened ({exc})"
        except (ValueError, TypeError, KeyError, AttributeError):
            why = "are not a readable private key (altered in the database?)"
        project_id, provider = doc.get("project_id"), doc.get("provider")
        name = "FCM" if provider == "fcm" else "APNs"
        unreadable = Unreadable(project_id, provider, f"the stored {name} credentials of this project {why}; "
                                                      f"set them again with {SET_AGAIN.get(provider, '')}")
        with self._lock:
            # Several sender threads may miss the cache together: one warning per project and cache period.
            first = self._warned.get((project_id, provider)) is None
            self._warned.set((project_id, provider), True)
        if first:
            log.warning("push credentials %s of project %s: %s", provider, project_id, unreadable.reason)
        return unreadable

    def _open(self, doc: dict):
        pem = self.sealer.open(doc["sealed"], _aad(doc["project_id"], doc["provider"], doc["revision"]))
        private_key = serialization.load_pem_private_key(pem, password=None)
        self._reseal(doc, pem)
        public = doc["public"]
        if doc["provider"] == "fcm":
            return FcmCredential(doc["project_id"], doc["revision"], public["firebase_project"],
                                 public["client_email"], public.get("private_key_id"), private_key,
                                 public["token_url"], public["base_url"])
        return ApnsCredential(doc["project_id"], doc["revision"], public["key_id"], public["team_id"],
                              public["bundle_id"], public["environment"], private_key, public["base_url"])


def describe(doc: dict) -> dict:
    return {"provider": doc["provider"], **doc["public"], "updated_at": doc["updated_at"]}
