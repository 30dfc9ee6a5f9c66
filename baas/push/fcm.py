"""Firebase Cloud Messaging (HTTP v1): Android devices, and iOS apps that use the Firebase SDK.

Authentication is OAuth 2.0 with a service account (RFC 7523): an RS256 JWT assertion signed with the account's
key is exchanged at the token endpoint for an access token, which is cached per (project, credential revision)
until shortly before it expires (five minutes, or half the lifetime of a token that lives less than ten), so
thousands of deliveries cost one token request. PyJWT (already a
dependency) signs the assertion; google-auth would do the same exchange through its own HTTP stack.

Requests go over baas.push.http1 keep-alive pools (HostPool, as Web Push), one per origin with up to a connection
per sender, to the address resolved and checked by baas.egress when the pool was made (again every
RESOLVE_SECONDS): a token or base URL whose name points at a private, loopback or link-local address fails its
deliveries unless the host is in push.allow_http_hosts. Measured here per
request: urllib3 ~0.25 ms of CPU, HostPool ~0.04 ms; httpx's HTTP/2 client ~1.5 ms, and its sync client is not
safe to share between sender threads over HTTP/2 (encode/httpx#3002). The JSON of a message is encoded once
(per second, for the APNs expiration it carries) and only the device token is spliced in per delivery.
"""
from __future__ import annotations

import ssl
import threading
import time
from urllib.parse import urlencode

import jwt
import orjson

from baas.egress import TargetRefused
from baas.push.credentials import Unreadable
from baas.push.http1 import HostPool, OriginPools, Response
from baas.push.providers import (FAILED, REMOVED, RESOLVE_SECONDS, RETRY, SENT, OutgoingMessage, Outcome,
                                 parse_retry_after, resolve_origin)
from baas.util import TTLCache

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_SECONDS = 3600
RENEW_BEFORE_SECONDS = 300
REFUSED_SECONDS = 60            # credentials the token endpoint refused are not tried again for this long
RETRIED_CODES = {"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"}
GONE_CODES = {"UNREGISTERED"}


def _string_data(note: dict) -> dict:
    # FCM data values must be strings: objects and numbers travel as JSON text the app parses back.
    data = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in (note.get("data") or {}).items()}
    for name in ("url", "icon", "message_id"):
        if name in note:
            data[name] = note[name]
    return data


def fcm_message(token: str, note: dict, native: dict, ttl: int, urgency: str, topic: str | None) -> dict:
    """The HTTP v1 `message` for one device token."""
    options = native.get("fcm") or {}
    apns_options = native.get("apns") or {}
    message: dict = {"token": token, "data": _string_data(note)}
    alert = {k: note[k] for k in ("title", "body") if k in note}
    if alert:
        message["notification"] = alert
    priority = options.get("priority") or ("high" if urgency == "high" else "normal")
    android: dict = {"priority": priority.upper(), "ttl": f"{ttl}s"}
    if topic:
        android["collapse_key"] = topic
    android_note = {k: options[k] for k in ("channel_id", "sound") if k in options}
    if android_note:
        android["notification"] = android_note
    message["android"] = android
    # iOS apps on the Firebase SDK: FCM forwards these to APNs.
    headers = {"apns-priority": "10" if urgency in ("high", "normal") else "5",
               "apns-expiration": str(int(time.time()) + ttl) if ttl else "0"}
    if topic:
        headers["apns-collapse-id"] = topic
    aps = {name: apns_options[key] for key, name in (("badge", "badge"), ("sound", "sound"),
                                                      ("thread_id", "thread-id")) if key in apns_options}
    message["apns"] = {"headers": headers, **({"payload": {"aps": aps}} if aps else {})}
    return message


def fcm_payload_size(note: dict, native: dict, ttl: int, urgency: str, topic: str | None) -> int:
    """Bytes of what FCM counts against its 4 KB limit: the notification and the data."""
    message = fcm_message("", note, native, ttl, urgency, topic)
    return len(orjson.dumps({"notification": message.get("notification", {}), "data": message["data"]}))


def _json(response) -> dict:
    try:
        body = orjson.loads(response.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_code(body: dict) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    code = ""
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and detail.get("errorCode"):
            code = str(detail["errorCode"])
    return code or str(error.get("status") or ""), " ".join(str(error.get("message") or "").split())[:200]


def _about_the_token(body: dict, message: str) -> bool:
    error = body.get("error") or {}
    for detail in error.get("details") or ():
        for violation in (detail.get("fieldViolations") or ()) if isinstance(detail, dict) else ():
            if str(violation.get("field", "")).endswith("token"):
                return True
    return "registration token" in message.lower()


class FcmProvider:
    name = "fcm"

    def __init__(self, credentials, pool_size: int, timeout: float, ca_file: str | None = None, allowed_hosts=()):
        self.credentials = credentials             # baas.push.credentials.NativeCredentials
        self.pool_size, self.timeout, self.ca_file = pool_size, timeout, ca_file
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self._tls = ssl.create_default_context(cafile=ca_file)   # the system CAs, or only push.native_ca_file's
        self._pools = OriginPools(RESOLVE_SECONDS, self._resolve, self._new_pool, HostPool.close)
        self._tokens: dict[tuple, tuple[str, float]] = {}     # key -> (access token, when to renew it)
        self._token_locks: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()
        self._refused = TTLCache(REFUSED_SECONDS)
        self._bodies = TTLCache(1, max_entries=256)   # one second: the apns-expiration inside stays exact

    def _resolve(self, origin: str) -> tuple[str, str, int, str]:
        # The admin's URLs are checked at save time for literal addresses only: a name is checked here, by what
        # it resolves to (as Web Push endpoints), and the pool connects to that checked address, so a name
        # re-pointed later waits for the next resolution and its check. TargetRefused when it is not public.
        return resolve_origin(origin, self.allowed_hosts)

    def _new_pool(self, scheme: str, host: str, port: int, address: str) -> HostPool:
        return HostPool(scheme, host, port, address, self.timeout, self.pool_size, self._tls)

    def post(self, url: str, body: bytes, headers: bytes) -> Response:
        """POST `body` to `url`; `headers` are encoded header lines (b"Name: value\r\n" each). OSError when
        the transport fails."""
        scheme, _, netloc, path = (url.split("/", 3) + [""])[:4]
        pool = self._pools.get(f"{scheme}//{netloc}", time.time())
        return pool.post(b"".join((b"POST /", path.encode("latin-1"), b" HTTP/1.1\r\nHost: ",
                                   netloc.encode("latin-1"), b"\r\n", headers, b"Content-Length: ",
                                   str(len(body)).encode(), b"\r\n\r\n", body)))

    # ---- access tokens

    def _fetch_token(self, credential) -> tuple[str, float] | Outcome:
        now = int(time.time())
        headers = {"kid": credential.private_key_id} if credential.private_key_id else None
        assertion = jwt.encode({"iss": credential.client_email, "scope": SCOPE, "aud": credential.token_url,
                                "iat": now, "exp": now + ASSERTION_SECONDS}, credential.private_key,
                               algorithm="RS256", headers=headers)
        try:
            response = self.post(credential.token_url,
                                 urlencode({"grant_type": GRANT_TYPE, "assertion": assertion}).encode(),
                                 b"Content-Type: application/x-www-form-urlencoded\r\n")
        except TargetRefused as exc:
            return Outcome(FAILED, None, f"FCM token endpoint refused: {exc} (only push.allow_http_hosts may be)")
        except OSError as exc:
            return Outcome(RETRY, None, f"FCM token endpoint unreachable: {type(exc).__name__}")
        if response.status == 429 or response.status >= 500:
            return Outcome(RETRY, response.status, f"FCM token endpoint answered {response.status}",
                           parse_retry_after(response.headers.get("retry-after"), time.time()))
        body = _json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status != 200 or not isinstance(token, str) or not token.isascii() or not token.isprintable():
            detail = " ".join(f"{body.get('error', '')} {body.get('error_description', '')}".split()) \
                if isinstance(body, dict) else ""
            reason = (f"FCM credentials refused by the token endpoint ({response.status}"
                      f"{': ' + detail[:160] if detail else ''}); set a valid service account with "
                      "`baas push credentials set PROJECT fcm FILE.json`")
            return Outcome(FAILED, response.status, reason)
        expires_in = body.get("expires_in", 3600)
        expires_in = expires_in if isinstance(expires_in, (int, float)) and expires_in > 0 else 3600
        # A fixed five-minute margin would make a token that lives under five minutes (gateways, tests) stale at
        # once, and every delivery would fetch a new one: a short-lived token is renewed at half its life.
        return token, time.time() + expires_in - min(RENEW_BEFORE_SECONDS, expires_in / 2)

    def _known(self, key: tuple) -> str | Outcome | None:
        """The cached access token, or the cached refusal of the credentials, or None."""
        refused = self._refused.get(key)
        if refused is not None:
            return refused
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        return None

    def access_token(self, credential) -> str | Outcome:
        key = (credential.project_id, credential.revision)
        known = self._known(key)
        if known is not None:
            return known
        with self._lock:
            lock = self._token_locks.setdefault(key, threading.Lock())
        with lock:  # one request per project however many senders need a token at once
            known = self._known(key)
            if known is not None:
                return known
            fetched = self._fetch_token(credential)
            if isinstance(fetched, Outcome):
                if fetched.kind == FAILED:
                    self._refused.set(key, fetched)
                return fetched
            self._tokens[key] = fetched
            return fetched[0]

    def _drop_token(self, credential, token: str) -> None:
        key = (credential.project_id, credential.revision)
        with self._lock:
            if self._tokens.get(key, ("",))[0] == token:
                del self._tokens[key]

    # ---- delivery

    def send(self, project_id: str, target: dict, message: OutgoingMessage) -> Outcome:
        credential = self.credentials.load(project_id, "fcm")
        if credential is None:
            return Outcome(FAILED, None, "FCM is not configured for this project "
                                         "(`baas push credentials set PROJECT fcm FILE.json`)")
        if isinstance(credential, Unreadable):
            return Outcome(FAILED, None, credential.reason)
        token = self.access_token(credential)
        if isinstance(token, Outcome):
            return token
        prefix, suffix = self._body(message)
        url = f"{credential.base_url}/v1/projects/{credential.firebase_project}/messages:send"
        device = target["endpoint"].split(":", 1)[1]
        try:
            response = self.post(url, b"".join((prefix, orjson.dumps(device), suffix)),
                                 b"Authorization: Bearer %s\r\nContent-Type: application/json\r\n" % token.encode())
        except TargetRefused as exc:
            return Outcome(FAILED, None, f"FCM endpoint refused: {exc} (only push.allow_http_hosts may be)")
        except OSError as exc:
            return Outcome(RETRY, None, f"connection error: {type(exc).__name__}")
        status = response.status
        if status == 200:
            return Outcome(SENT, status)
        error = _json(response)
        code, text = _error_code(error)
        reason = f"{status} {code or 'error'}" + (f": {text}" if text else "")
        retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        if code in GONE_CODES or status == 404:
            return Outcome(REMOVED, status, reason)
        if code == "INVALID_ARGUMENT" and _about_the_token(error, text):
            return Outcome(REMOVED, status, reason)
        if status == 401 and code in ("UNAUTHENTICATED", ""):
            self._drop_token(credential, token)     # expired or revoked early: a new one on the retry
            return Outcome(RETRY, status, reason)
        if code in RETRIED_CODES or status == 429 or status >= 500:
            return Outcome(RETRY, status, reason, retry_after)
        return Outcome(FAILED, status, reason)       # SENDER_ID_MISMATCH, THIRD_PARTY_AUTH_ERROR, bad payloads

    def _body(self, message: OutgoingMessage) -> tuple[bytes, bytes]:
        """The request body of this message around the device token: prefix + JSON string + suffix."""
        native = message.native or {}
        key = (message.payload, message.ttl, message.urgency, message.topic,
               orjson.dumps(native, option=orjson.OPT_SORT_KEYS) if native else b"")
        found = self._bodies.get(key)
        if found is None:
            fields = fcm_message("", orjson.loads(message.payload), native, message.ttl, message.urgency,
                                 message.topic)
            del fields["token"]
            found = (b'{"message":{"token":', b"," + orjson.dumps(fields)[1:] + b"}")
            self._bodies.set(key, found)
        return found

    def close(self) -> None:
        for pool in self._pools.take_all():
            pool.close()
