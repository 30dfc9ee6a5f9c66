"""Apple Push Notification service over HTTP/2 with token-based authentication (a .p8 key per project).

Apple asks for few connections used long: one HTTP/2 connection per project (per credential revision) carries
every delivery as a multiplexed stream, and the ES256 provider JWT is signed once and reused for 40 minutes
(Apple refuses tokens older than an hour and throttles ones renewed more often than every 20 minutes). When Apple
calls it expired all the same (403 ExpiredProviderToken), it is signed again once and the refused deliveries are
resent at once, within the same attempt; a new token refused as expired too means this server's clock is off.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import NamedTuple
from urllib.parse import urlsplit

import jwt
import orjson

from baas.push.aio import LoopThread
from baas.egress import TargetRefused, connect_address
from baas.push.credentials import Unreadable
from baas.push.h2client import ConnectionLost, H2Origin, client_ssl_context
from baas.push.http1 import OriginPools
from baas.push.providers import (DELIVERY_LOOKUP_SECONDS, FAILED, REMOVED, RESOLVE_SECONDS, RETRY, SENT,
                                 OutgoingMessage, Outcome, parse_retry_after)
from baas.util import TTLCache

JWT_REUSE_SECONDS = 40 * 60
REFUSED_SECONDS = 60              # after a 403 for the credentials, the rest of the audience fails fast
GONE_REASONS = {"BadDeviceToken", "Unregistered"}
EXPIRED = "ExpiredProviderToken"
CREDENTIAL_HINT = "check the key id, team id, bundle id and .p8 key set with `baas push credentials set PROJECT apns`"
CLOCK_HINT = ("APNs called a provider token signed just now expired (403 ExpiredProviderToken): this server's clock "
              "is probably wrong (Apple refuses tokens issued over an hour ago by its clock); check NTP")


def apns_payload(note: dict, options: dict) -> bytes:
    """The JSON body Apple delivers: `aps` plus the notification's url/icon/message_id and custom data."""
    aps: dict = {}
    alert = {k: note[k] for k in ("title", "body") if k in note}
    if push_type(note, options) == "background":
        aps["content-available"] = 1
    elif alert:
        aps["alert"] = alert
    for key, name in (("badge", "badge"), ("sound", "sound"), ("thread_id", "thread-id")):
        if key in options:
            aps[name] = options[key]
    if options.get("mutable_content"):
        aps["mutable-content"] = 1
    body = {**(note.get("data") or {})}
    for name in ("url", "icon", "message_id"):
        if name in note:
            body[name] = note[name]
    body["aps"] = aps
    return orjson.dumps(body)


def _reason_of(response) -> str:
    """Apple's `reason` of an error answer ("" for successes, exceptions and bodies that are not its JSON)."""
    if isinstance(response, BaseException) or response.status == 200 or not response.body:
        return ""
    try:
        answer = orjson.loads(response.body)
    except ValueError:
        return ""
    return str(answer.get("reason") or "") if isinstance(answer, dict) else ""


def push_type(note: dict, options: dict) -> str:
    """alert unless asked otherwise; a message with nothing to show wakes the app in the background."""
    if "push_type" in options:
        return options["push_type"]
    return "alert" if any(k in note for k in ("title", "body")) or "badge" in options or "sound" in options \
        else "background"


class _CheckedAddress(NamedTuple):
    """What OriginPools keeps per APNs base URL: the connection itself is per project (ApnsProvider._origin)."""
    address: str


def _checked_address(scheme: str, host: str, port: int, address: str) -> _CheckedAddress:
    return _CheckedAddress(address)


def _forget(_: _CheckedAddress) -> None:
    """Nothing to close: a project's connection is replaced when its base URL's address changes."""


class ApnsProvider:
    name = "apns"

    def __init__(self, credentials, timeout: float, ca_file: str | None = None, allowed_hosts=()):
        self.credentials = credentials             # baas.push.credentials.NativeCredentials
        self.timeout = timeout
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self._addresses = OriginPools(RESOLVE_SECONDS, self._resolve, _checked_address, _forget)
        self.ssl_context = client_ssl_context(ca_file)
        self._origins: dict[tuple, H2Origin] = {}      # touched on the loop's thread only
        self.loop = LoopThread("baas-push-apns")
        self._jwts: dict[tuple, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._refused = TTLCache(REFUSED_SECONDS)
        self._payloads = TTLCache(60, max_entries=256)

    def _address(self, base_url: str) -> str:
        """The checked address of the base URL's host (baas.egress, as Web Push endpoints), resolved again after
        RESOLVE_SECONDS, in the caller's thread so a DNS lookup never stalls the loop. TargetRefused or OSError.

        OriginPools remembers failures as it does for Web Push and FCM: a project whose APNs name does not
        resolve costs its deliveries one lookup per period, not one per batch, and a DNS blip keeps the address
        checked before."""
        return self._addresses.get(base_url, time.time()).address

    def _resolve(self, base_url: str) -> tuple[str, str, int, str]:
        # Not resolve_origin: an APNs URL without a port means 443 whatever its scheme (the emulators' http://).
        parts = urlsplit(base_url)
        host, port = parts.hostname or "", parts.port or 443
        return parts.scheme, host, port, connect_address(host, port, self.allowed_hosts,
                                                         timeout=DELIVERY_LOOKUP_SECONDS)

    def _origin(self, credential, address: str) -> H2Origin:
        key = (credential.project_id, credential.revision)
        origin = self._origins.get(key)
        if origin is None or origin.address != address:
            for old in [k for k in self._origins if k[0] == credential.project_id]:
                self._origins.pop(old).close()     # new credentials, or the name moved: the old connection goes
            origin = self._origins[key] = H2Origin(credential.base_url, self.ssl_context, self.timeout, address)
        return origin

    def provider_token(self, credential, now: float | None = None) -> str:
        now = time.time() if now is None else now
        key = (credential.project_id, credential.revision)
        cached = self._jwts.get(key)
        if cached is not None and now - cached[1] < JWT_REUSE_SECONDS:
            return cached[0]
        with self._lock:
            cached = self._jwts.get(key)
            if cached is not None and now - cached[1] < JWT_REUSE_SECONDS:
                return cached[0]
            token = jwt.encode({"iss": credential.team_id, "iat": int(now)}, credential.private_key,
                               algorithm="ES256", headers={"kid": credential.key_id})
            self._jwts[key] = (token, now)
            return token

    def renew_token(self, credential, expired: str) -> str:
        """A new provider JWT in place of one Apple called expired; the same new one for every delivery (and
        thread) that saw the old one refused, so one expiry costs one renewal (Apple throttles frequent ones)."""
        key = (credential.project_id, credential.revision)
        with self._lock:
            cached = self._jwts.get(key)
            if cached is not None and cached[0] != expired:
                return cached[0]
            self._jwts.pop(key, None)
        return self.provider_token(credential)

    def _payload(self, message: OutgoingMessage) -> tuple[bytes, str]:
        found = self._payloads.get(message.payload)
        if found is None:
            note = orjson.loads(message.payload)
            options = (message.native or {}).get("apns") or {}
            found = (apns_payload(note, options), push_type(note, options))
            self._payloads.set(message.payload, found)
        return found

    def send(self, project_id: str, target: dict, message: OutgoingMessage) -> Outcome:
        return self.send_many(project_id, [target], message)[0]

    def send_many(self, project_id: str, targets: list, message: OutgoingMessage) -> list[Outcome]:
        """Send to several devices at once: every request a stream on the project's one connection, all in
        flight together, with one hand-over to the loop instead of one thread blocked per device."""
        credential = self.credentials.load(project_id, "apns")
        if credential is None:
            return [Outcome(FAILED, None, "APNs is not configured for this project "
                                          "(`baas push credentials set PROJECT apns ...`)")] * len(targets)
        if isinstance(credential, Unreadable):
            return [Outcome(FAILED, None, credential.reason)] * len(targets)
        refused = self._refused.get((project_id, credential.revision))
        if refused is not None:
            return [refused] * len(targets)
        try:
            address = self._address(credential.base_url)
        except TargetRefused as exc:
            return [Outcome(FAILED, None, f"APNs endpoint refused: {exc} (only push.allow_http_hosts may be)")] \
                * len(targets)
        except OSError as exc:
            return [Outcome(RETRY, None, f"connection error: {exc}")] * len(targets)
        body, kind = self._payload(message)
        token = self.provider_token(credential)
        headers = {"authorization": f"bearer {token}", "apns-topic": credential.bundle_id,
                   "apns-push-type": kind,
                   # Apple requires priority 5 for background pushes; low urgency saves the battery too.
                   "apns-priority": "10" if kind == "alert" and message.urgency in ("high", "normal") else "5",
                   "apns-expiration": str(int(time.time()) + message.ttl) if message.ttl else "0"}
        if message.topic:
            headers["apns-collapse-id"] = message.topic
        paths = [f"/3/device/{target['endpoint'].split(':', 1)[1]}" for target in targets]
        answers = self._post_all(credential, address, paths, body, headers)
        expired = [i for i, answer in enumerate(answers) if _reason_of(answer) == EXPIRED]
        if expired:
            # The JWT grew too old for Apple (or its clock says so): sign a new one and resend those deliveries
            # at once, as part of this attempt. One still refused as expired is a clock problem (_outcome).
            headers = {**headers, "authorization": f"bearer {self.renew_token(credential, token)}"}
            resent = self._post_all(credential, address, [paths[i] for i in expired], body, headers)
            for i, answer in zip(expired, resent):
                answers[i] = answer
        return [self._outcome(credential, answer) for answer in answers]

    def _post_all(self, credential, address: str, paths: list, body: bytes, headers: dict) -> list:
        """A Response or an exception per path (TimeoutError for all when the loop did not answer in time)."""
        try:
            return self.loop.run(self._post_on_loop(credential, address, paths, body, headers), self.timeout + 5)
        except TimeoutError as exc:
            return [exc] * len(paths)

    async def _post_on_loop(self, credential, address: str, paths: list, body: bytes, headers: dict) -> list:
        return await self._origin(credential, address).post_many(paths, headers, body)

    def _outcome(self, credential, response) -> Outcome:
        if isinstance(response, BaseException):
            if isinstance(response, (ConnectionLost, asyncio.TimeoutError, TimeoutError)):
                return Outcome(RETRY, None, f"connection error: {response}")
            return Outcome(FAILED, None, f"provider error: {type(response).__name__}")
        status = response.status
        if status == 200:
            return Outcome(SENT, status)
        why = _reason_of(response)
        reason = f"{status} {why or 'error'}"
        if status == 410 or (status == 400 and why in GONE_REASONS):
            return Outcome(REMOVED, status, reason)
        if status == 403:
            # Expired here means expired even after the renewal in send_many.
            refused = Outcome(FAILED, status, CLOCK_HINT if why == EXPIRED
                              else f"APNs refused the credentials: {reason}; {CREDENTIAL_HINT}")
            self._refused.set((credential.project_id, credential.revision), refused)
            return refused
        if status == 429 or status >= 500:
            return Outcome(RETRY, status, reason, parse_retry_after(response.headers.get("retry-after"),
                                                                    time.time()))
        return Outcome(FAILED, status, reason)

    async def _close_origins(self) -> None:
        origins, self._origins = list(self._origins.values()), {}
        for origin in origins:
            origin.close()

    def close(self) -> None:
        self.loop.close(self._close_origins)
