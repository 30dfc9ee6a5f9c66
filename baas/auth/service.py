"""End users of a project: sign-up, log-in, sessions with rotating refresh tokens, revocation, mail flows.

Everything lives in the project's own database, in collections reserved for the system:
  _users           the accounts (email unique per project; anonymous users have none)
  _sessions        one per log-in; a session is the "family" of all refresh tokens rotated from that log-in
  _refresh_tokens  SHA-256 of each refresh token, single-use; a used one presented again revokes its session
  _revoked         revocation markers checked on every request: j:<jti>, s:<session>, u:<user> (issued-before)
  _user_tokens     SHA-256 of email-verification and password-reset tokens
  _login_failures  failed log-ins per email (hashed) for the lockout
Markers and tokens carry `expires_at` for a TTL index, and every query also checks expiry itself.

Timestamps that later queries compare are written with insert/replace (or as epoch numbers), and "now"
timestamps on updates with $currentDate; both behave the same on MongoDB and the embedded server.
"""
from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta, timezone

import orjson
from marshmallow import ValidationError, validate
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from baas.auth import settings as auth_settings
from baas.auth.passwords import Passwords, check_policy
from baas.auth.tokens import AccessTokens
from baas.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests, Unauthorized
from baas.mail import render
from baas.principal import ProjectInfo, UserInfo
from baas.storage.mongo import ensure_index
from baas.util import TTLCache, new_id, random_token, sha256_hex, utcnow

log = logging.getLogger("baas.auth")

USERS = "_users"
SESSIONS = "_sessions"
REFRESH_TOKENS = "_refresh_tokens"
REVOKED = "_revoked"
USER_TOKENS = "_user_tokens"
LOGIN_FAILURES = "_login_failures"

ROLE_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_ROLES = 50
MAX_PROFILE_BYTES = 16_384
MAX_PROFILE_DEPTH = 8
_email_validator = validate.Email()

WRONG_CREDENTIALS = "Wrong email or password."
ACCOUNT_DISABLED = "This user account is disabled."
_USER_MARKER_MESSAGES = {
    "disabled": ACCOUNT_DISABLED,
    "deleted": "This user no longer exists.",
    "changed": "This access token predates a change to the account's roles; get a new one with "
               "POST /v1/auth/refresh.",
    # A reset also ends every session, so refresh tokens are dead too: only a new log-in helps.
    "password_reset": "The password of this account was reset, which signed out every session; log in again "
                      "with the new password (POST /v1/auth/login).",
}


def normalise_email(value, field: str = "email") -> str:
    if not isinstance(value, str):
        raise Invalid("The email address must be a string.", errors={field: ["Must be a string."]})
    email = value.strip().lower()
    try:
        if len(email) > 254:
            raise ValidationError("too long")
        _email_validator(email)
    except ValidationError:
        raise Invalid("Not a valid email address.", errors={field: ["Not a valid email address."]}) from None
    return email


def email_key(email: str) -> str:
    """The account key for limits and lockout: a hash, so counters never store addresses."""
    return sha256_hex("email:" + email)[:40]


def check_profile(data) -> dict:
    """Custom profile data: a JSON object of bounded size whose keys cannot act as MongoDB operators."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise Invalid("Profile data must be a JSON object.", errors={"data": ["Must be an object."]})

    def walk(value, depth: int, path: str):
        if depth > MAX_PROFILE_DEPTH:
            raise Invalid(f"Profile data may nest at most {MAX_PROFILE_DEPTH} levels.", errors={"data": [path]})
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or not key or key.startswith("$") or "." in key or "\0" in key:
                    raise Invalid("Profile data keys must be non-empty and may not start with '$' or contain '.'.",
                                  errors={"data": [f"Bad key: {key!r}"]})
                walk(item, depth + 1, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for item in value:
                walk(item, depth + 1, path)

    walk(data, 1, "")
    if len(orjson.dumps(data)) > MAX_PROFILE_BYTES:
        raise Invalid(f"Profile data must be at most {MAX_PROFILE_BYTES} bytes as JSON.",
                      errors={"data": ["Too large."]})
    return data


def check_roles(roles) -> list[str]:
    if not isinstance(roles, list) or len(roles) > MAX_ROLES:
        raise Invalid(f"Roles must be a list of at most {MAX_ROLES} names.", errors={"roles": ["Invalid list."]})
    clean: list[str] = []
    for role in roles:
        if not isinstance(role, str) or not ROLE_PATTERN.match(role):
            raise Invalid("A role is 1 to 64 letters, digits, '_', '.', ':' or '-'.",
                          errors={"roles": [f"Invalid role: {role!r}"]})
        if role not in clean:
            clean.append(role)
    return clean


_FLAGS = ("email_verified", "anonymous", "disabled")


def public(doc: dict) -> dict:
    """A user document as it may leave the service (never the password hash; flags as true/false)."""
    shown = {k: v for k, v in doc.items() if k != "password_hash"}
    for flag in _FLAGS:
        shown[flag] = bool(shown.get(flag))
    return shown


def _email_taken() -> Conflict:
    return Conflict("An account with this email address already exists.", errors={"email": ["Already registered."]})


# The two kinds of mailed single-use tokens.
_MAILED = {
    "verify": {"prefix": "baas_vt_", "page": "verify-email", "hours": "verify_token_hours", "what": "verification"},
    "reset": {"prefix": "baas_pr_", "page": "reset-password", "hours": "reset_token_hours", "what": "password reset"},
}


def _put(collection, doc_id: str, fields: dict) -> None:
    """Write a whole document by id. The replacement repeats the _id (the embedded server does not take it
    from the filter on upsert), and whole-document writes keep dates as dates on every server."""
    collection.replace_one({"_id": doc_id}, {"_id": doc_id, **fields}, upsert=True)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


class AuthService:
    def __init__(self, mongo, hooks, passwords: Passwords, tokens: AccessTokens, mailer, limiter, config: dict):
        self.mongo = mongo
        self.hooks = hooks
        self.on_user_deleted: list = []  # callables (project_id, user_id), run after a user is deleted
        self.passwords = passwords
        self.tokens = tokens
        self.mailer = mailer
        self.limiter = limiter
        self.config = config
        self.refresh_lifetime = timedelta(days=config["jwt"]["refresh_token_days"])
        self.access_seconds = config["jwt"]["access_token_minutes"] * 60
        self._revocation_cache = TTLCache(config["auth"]["revocation_cache_seconds"], max_entries=50_000)
        self._indexed: set[str] = set()

    # ---- storage helpers

    def ensure_indexes(self) -> None:
        """Per-project indexes are made on first use of each project (see _col)."""

    def _ensure_project_indexes(self, project_id: str) -> None:
        db = self.mongo.project_db(project_id)
        ensure_index(db[USERS], [("email", ASCENDING)], name="email_unique", unique=True,
                     partialFilterExpression={"email": {"$type": "string"}})
        ensure_index(db[SESSIONS], [("user_id", ASCENDING)], name="user")
        ensure_index(db[REFRESH_TOKENS], [("session_id", ASCENDING)], name="session")
        for name in (REFRESH_TOKENS, REVOKED, USER_TOKENS, LOGIN_FAILURES):
            ensure_index(db[name], [("expires_at", ASCENDING)], name="expires_ttl", expireAfterSeconds=0)
        ensure_index(db[USER_TOKENS], [("user_id", ASCENDING)], name="user")

    def forget_project(self, project_id: str) -> None:
        self._indexed.discard(project_id)
        self._revocation_cache.clear()

    def _col(self, project_id: str, name: str):
        if project_id not in self._indexed:
            self._ensure_project_indexes(project_id)
            self._indexed.add(project_id)
        return self.mongo.project_db(project_id)[name]

    def _settings(self, project: ProjectInfo) -> dict:
        return auth_settings.effective(project.settings)

    def _find_user(self, project_id: str, user_id: str) -> dict:
        doc = self._col(project_id, USERS).find_one({"_id": user_id}) if isinstance(user_id, str) else None
        if doc is None:
            raise NotFound(f"No user '{user_id}' in this project.")
        return doc

    def _hit(self, project_id: str, action: str, ip: str, account: str | None = None) -> None:
        if self.limiter is not None:
            self.limiter.hit_auth(project_id, action, ip, account)

    # ---- sessions and token pairs

    def _start_session(self, project_id: str, user: dict, ip: str | None, user_agent: str | None) -> dict:
        now = utcnow()
        session = {"_id": new_id("ses_"), "user_id": user["_id"], "created_at": now,
                   "expires_at": now + self.refresh_lifetime, "revoked": False,
                   "ip": (ip or "")[:64], "user_agent": (user_agent or "")[:300]}
        self._col(project_id, SESSIONS).insert_one(session)
        return session

    def _issue_pair(self, project_id: str, user_id: str, session: dict) -> dict:
        # Claims come from a fresh read, so a role change or disable racing with this log-in is never lost.
        user = self._col(project_id, USERS).find_one({"_id": user_id}, {"roles": 1, "anonymous": 1, "disabled": 1})
        if user is None:
            raise Unauthorized("This user no longer exists.")
        if user.get("disabled"):
            self._revoke_sessions(project_id, {"_id": session["_id"]})
            raise Forbidden(ACCOUNT_DISABLED)
        refresh = "baas_rt_" + random_token(32)
        self._col(project_id, REFRESH_TOKENS).insert_one({
            "_id": sha256_hex(refresh), "session_id": session["_id"], "user_id": user_id, "used": False,
            "created_at": utcnow(), "expires_at": session["expires_at"]})
        access, lifetime = self.tokens.issue(project_id, user_id, user.get("roles") or [],
                                             bool(user.get("anonymous")), session["_id"])
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": lifetime}

    def _signed_in(self, project_id: str, user: dict, ip, user_agent) -> dict:
        session = self._start_session(project_id, user, ip, user_agent)
        pair = self._issue_pair(project_id, user["_id"], session)
        return {"user": public(user), **pair}

    def _signed_in_or_verify(self, project: ProjectInfo, settings: dict, user: dict, ip, user_agent) -> dict:
        """A new email and password sign in at once, unless the project wants the address confirmed first."""
        if settings["require_verified_email"]:
            self._send_token_mail(project, settings, user, "verify")
            return {"user": public(user)}
        return self._signed_in(project.id, user, ip, user_agent)

    # ---- revocation

    def _marker_expiry(self) -> datetime:
        # Every access token issued before a marker expires within one access-token lifetime.
        return utcnow() + timedelta(seconds=self.access_seconds + 60)

    def _revoke_jti(self, project_id: str, jti: str | None, expires_at: float | None) -> None:
        if not jti:
            return
        until = _at(expires_at + 60) if expires_at else self._marker_expiry()
        _put(self._col(project_id, REVOKED), f"j:{jti}", {"kind": "token", "expires_at": until})
        self._revocation_cache.clear()

    def _revoke_sessions(self, project_id: str, query: dict) -> int:
        sessions = self._col(project_id, SESSIONS)
        ids = [doc["_id"] for doc in sessions.find({**query, "revoked": False}, {"_id": 1})]
        if not ids:
            return 0
        sessions.update_many({"_id": {"$in": ids}}, {"$set": {"revoked": True},
                                                     "$currentDate": {"revoked_at": True}})
        revoked = self._col(project_id, REVOKED)
        until = self._marker_expiry()
        for session_id in ids:
            _put(revoked, f"s:{session_id}", {"kind": "session", "expires_at": until})
        self._revocation_cache.clear()
        return len(ids)

    def _mark_user(self, project_id: str, user_id: str, reason: str) -> None:
        """Refuse every access token of the user issued before now."""
        _put(self._col(project_id, REVOKED), f"u:{user_id}",
             {"kind": "user", "reason": reason, "before": round(time.time(), 3) + 0.001,
              "expires_at": self._marker_expiry()})
        self._revocation_cache.clear()

    def resolve_user(self, project: ProjectInfo, token: str) -> UserInfo:
        claims = self.tokens.decode(token)
        if claims["pid"] != project.id:
            raise Unauthorized("This access token belongs to another project.")
        jti, session_id, user_id = claims["jti"], claims["sid"], claims["sub"]
        cache_key = (project.id, jti)
        verdict = self._revocation_cache.get(cache_key)
        if verdict is None:
            verdict = self._revocation_verdict(project.id, jti, session_id, user_id, float(claims["iat"]))
            self._revocation_cache.set(cache_key, verdict)
        if verdict != "ok":
            raise Unauthorized(verdict)
        return UserInfo(id=user_id, roles=tuple(claims.get("roles") or ()), anonymous=bool(claims.get("anon")),
                        session_id=session_id, token_id=jti, token_expires_at=float(claims["exp"]))

    def _revocation_verdict(self, project_id: str, jti: str, session_id: str, user_id: str, issued_at: float) -> str:
        markers = self._col(project_id, REVOKED).find(
            {"_id": {"$in": [f"j:{jti}", f"s:{session_id}", f"u:{user_id}"]}, "expires_at": {"$gt": utcnow()}})
        verdict = "ok"
        for marker in markers:
            if marker["_id"].startswith("u:"):
                if issued_at < float(marker.get("before") or 0):
                    # The account-level reason (disabled, deleted) says more than "signed out".
                    return _USER_MARKER_MESSAGES.get(marker.get("reason"), _USER_MARKER_MESSAGES["changed"])
            else:
                verdict = "This access token has been revoked (the session was signed out)."
        return verdict

    # ---- lockout

    def _lockout_enabled(self) -> bool:
        return self.config["rate_limits"]["enabled"]

    def _check_lockout(self, project_id: str, account: str) -> None:
        if not self._lockout_enabled():
            return
        doc = self._col(project_id, LOGIN_FAILURES).find_one({"_id": account})
        locked_until = float((doc or {}).get("locked_until", 0) or 0)
        now = time.time()
        if locked_until > now:
            minutes = max(1, int((locked_until - now + 59) // 60))
            raise TooManyRequests(f"Too many failed log-ins: this account is locked for about {minutes} more "
                                  f"minute(s). Resetting the password unlocks it.", retry_after=int(locked_until - now) + 1)

    def _record_failure(self, project_id: str, account: str) -> None:
        if not self._lockout_enabled():
            return
        limits = self.config["rate_limits"]
        window, cooldown = limits["lockout_window_minutes"] * 60, limits["lockout_minutes"] * 60
        failures = self._col(project_id, LOGIN_FAILURES)
        now = time.time()
        doc = failures.find_one_and_update({"_id": account, "window_start": {"$gt": now - window}},
                                           {"$inc": {"failures": 1}}, return_document=ReturnDocument.AFTER)
        if doc is None:
            fresh = {"_id": account, "failures": 1, "window_start": now, "locked_until": 0,
                     "expires_at": _at(now + window + cooldown)}
            count = 1
            try:
                # Restart a spent window in place, or start the first one; a concurrent first failure that got
                # there before us is counted on rather than overwritten.
                if failures.replace_one({"_id": account, "window_start": {"$lte": now - window}},
                                        fresh).matched_count == 0:
                    failures.insert_one(fresh)
            except DuplicateKeyError:
                doc = failures.find_one_and_update({"_id": account}, {"$inc": {"failures": 1}},
                                                   return_document=ReturnDocument.AFTER)
                count = int(doc["failures"]) if doc else 1
        else:
            count = int(doc["failures"])
        if count >= limits["lockout_attempts"]:
            failures.update_one({"_id": account}, {"$set": {"locked_until": now + cooldown}})
            log.warning("project %s: account %s locked after %d failed log-ins", project_id, account[:12], count)

    def _clear_failures(self, project_id: str, account: str) -> None:
        self._col(project_id, LOGIN_FAILURES).delete_one({"_id": account})

    # ---- sign-up and log-in

    def _new_user(self, email: str | None, password: str | None, data: dict, anonymous: bool = False,
                  roles: list | None = None, email_verified: bool = False, disabled: bool = False) -> dict:
        now = utcnow()
        return {"_id": new_id("u_"), "email": email, "email_verified": email_verified,
                "password_hash": self.passwords.hash(password) if password else None,
                "anonymous": anonymous, "roles": roles or [], "disabled": disabled, "data": data,
                "created_at": now, "updated_at": now, "last_login_at": None}

    def _check_email_free(self, project_id: str, email: str) -> None:
        # The unique index is the real guard (DuplicateKeyError below); this gives the clear answer up front.
        if self._col(project_id, USERS).find_one({"email": email}, {"_id": 1}) is not None:
            raise _email_taken()

    def _insert_user(self, project_id: str, user: dict) -> None:
        try:
            self._col(project_id, USERS).insert_one(user)
        except DuplicateKeyError:
            raise _email_taken() from None

    def signup(self, project: ProjectInfo, email, password, data=None, ip: str = "", user_agent: str = "") -> dict:
        settings = self._settings(project)
        if not settings["allow_signup"]:
            raise Forbidden("Sign-up is closed for this project; ask its administrators for an account.")
        email = normalise_email(email)
        self._hit(project.id, "signup", ip, email_key(email))
        check_policy(password, settings)
        data = check_profile(data)
        self.hooks.before("baas_before_user_signup", project_id=project.id, email=email, data=data)
        data = check_profile(data)  # again: a plugin may have changed it
        user = self._new_user(email, password, data)
        if not settings["require_verified_email"]:
            user["last_login_at"] = user["created_at"]
        self._insert_user(project.id, user)
        self.hooks.after("baas_after_user_signup", project_id=project.id, user=public(user))
        return self._signed_in_or_verify(project, settings, user, ip, user_agent)

    def anonymous(self, project: ProjectInfo, ip: str = "", user_agent: str = "") -> dict:
        settings = self._settings(project)
        if not settings["allow_anonymous"]:
            raise Forbidden("Anonymous users are not allowed in this project.")
        self._hit(project.id, "anonymous", ip)
        data: dict = {}
        self.hooks.before("baas_before_user_signup", project_id=project.id, email=None, data=data)
        user = self._new_user(None, None, check_profile(data), anonymous=True)
        user["last_login_at"] = user["created_at"]
        self._insert_user(project.id, user)
        self.hooks.after("baas_after_user_signup", project_id=project.id, user=public(user))
        return self._signed_in(project.id, user, ip, user_agent)

    def upgrade_anonymous(self, project: ProjectInfo, principal_user: UserInfo, email, password,
                          ip: str = "", user_agent: str = "") -> dict:
        """Give an anonymous user an email and password; it keeps its id and data."""
        settings = self._settings(project)
        if not principal_user.anonymous:
            raise Conflict("This user already has an email and password.")
        email = normalise_email(email)
        self._hit(project.id, "signup", ip, email_key(email))
        check_policy(password, settings)
        users = self._col(project.id, USERS)
        self._check_email_free(project.id, email)
        try:
            user = users.find_one_and_update(
                {"_id": principal_user.id, "anonymous": True},
                {"$set": {"email": email, "email_verified": False, "anonymous": False,
                          "password_hash": self.passwords.hash(password)},
                 "$currentDate": {"updated_at": True}},
                return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            raise _email_taken() from None
        if user is None:
            raise Conflict("This user already has an email and password.")
        # The anonymous session's tokens say anon=true; end it (its tokens with it) and start a proper one. No
        # user-wide cutoff here: the new token is issued within the same millisecond on a fast MongoDB.
        self._revoke_sessions(project.id, {"user_id": user["_id"]})
        return self._signed_in_or_verify(project, settings, user, ip, user_agent)

    def login(self, project: ProjectInfo, email, password, ip: str = "", user_agent: str = "") -> dict:
        settings = self._settings(project)
        try:
            email = normalise_email(email)
        except Invalid:
            raise Unauthorized(WRONG_CREDENTIALS) from None
        account = email_key(email)
        self._hit(project.id, "login", ip, account)
        self._check_lockout(project.id, account)
        users = self._col(project.id, USERS)
        user = users.find_one({"email": email})
        if not isinstance(password, str) or not self.passwords.verify(user and user.get("password_hash"), password):
            self._record_failure(project.id, account)
            raise Unauthorized(WRONG_CREDENTIALS)
        if user.get("disabled"):
            raise Forbidden(ACCOUNT_DISABLED)
        if settings["require_verified_email"] and not user.get("email_verified"):
            raise Forbidden("Confirm your email address before logging in; POST /v1/auth/verify-email/request "
                            "sends a new link.")
        self.hooks.before("baas_before_user_login", project_id=project.id, user=public(user))
        self._clear_failures(project.id, account)
        changes: dict = {"$currentDate": {"last_login_at": True}}
        if self.passwords.needs_rehash(user["password_hash"]):
            changes["$set"] = {"password_hash": self.passwords.hash(password)}
        user = users.find_one_and_update({"_id": user["_id"]}, changes, return_document=ReturnDocument.AFTER)
        if user is None:  # deleted between the password check and now
            raise Unauthorized(WRONG_CREDENTIALS)
        result = self._signed_in(project.id, user, ip, user_agent)
        self.hooks.after("baas_after_user_login", project_id=project.id, user=public(user))
        return result

    def refresh(self, project: ProjectInfo, refresh_token, ip: str = "", user_agent: str = "") -> dict:
        if not isinstance(refresh_token, str) or not refresh_token.startswith("baas_rt_") or len(refresh_token) > 200:
            self._hit(project.id, "refresh", ip)
            raise Unauthorized("Invalid refresh token.")
        digest = sha256_hex(refresh_token)
        tokens = self._col(project.id, REFRESH_TOKENS)
        # Limits are checked before the token is spent: a 429 must not burn a valid token (its retry would then
        # look like theft and sign the session out).
        owner = tokens.find_one({"_id": digest}, {"user_id": 1})
        self._hit(project.id, "refresh", ip, owner["user_id"] if owner else None)
        now = utcnow()
        stored = tokens.find_one_and_update({"_id": digest, "used": False, "expires_at": {"$gt": now}},
                                            {"$set": {"used": True}, "$currentDate": {"used_at": True}})
        if stored is None:
            known = tokens.find_one({"_id": digest})
            if known is not None and known.get("used"):
                # A refresh token works once; seeing it again means two parties hold the session.
                revoked = self._revoke_sessions(project.id, {"_id": known["session_id"]})
                log.warning("project %s: refresh token reused; session %s revoked", project.id, known["session_id"])
                if revoked:
                    raise Unauthorized("This refresh token was already used; the whole session has been revoked "
                                       "as a precaution. Log in again.")
                raise Unauthorized("This refresh token was already used and its session is signed out.")
            if known is not None:
                raise Unauthorized("The refresh token has expired; log in again.")
            raise Unauthorized("Invalid refresh token.")
        session = self._col(project.id, SESSIONS).find_one({"_id": stored["session_id"]})
        if session is None or session.get("revoked"):
            raise Unauthorized("This session has been signed out; log in again.")
        user = self._col(project.id, USERS).find_one({"_id": stored["user_id"]})
        if user is None:
            raise Unauthorized("This user no longer exists.")
        if user.get("disabled"):
            raise Forbidden(ACCOUNT_DISABLED)
        self._col(project.id, SESSIONS).update_one({"_id": session["_id"]},
                                                   {"$currentDate": {"refreshed_at": True}})
        return {"user": public(user), **self._issue_pair(project.id, user["_id"], session)}

    def logout(self, project: ProjectInfo, user: UserInfo) -> None:
        self._revoke_sessions(project.id, {"_id": user.session_id})
        self._revoke_jti(project.id, user.token_id, user.token_expires_at)

    def logout_all(self, project: ProjectInfo, user: UserInfo) -> int:
        count = self._revoke_sessions(project.id, {"user_id": user.id})
        self._revoke_jti(project.id, user.token_id, user.token_expires_at)
        return count

    # ---- the signed-in user's own account

    def me(self, project: ProjectInfo, user: UserInfo) -> dict:
        return public(self._find_user(project.id, user.id))

    def _confirm_password(self, project: ProjectInfo, user_doc: dict, password, ip: str) -> None:
        account = email_key(user_doc["email"]) if user_doc.get("email") else user_doc["_id"]
        self._hit(project.id, "password-check", ip, account)
        self._check_lockout(project.id, account)
        if not isinstance(password, str) or not self.passwords.verify(user_doc.get("password_hash"), password):
            self._record_failure(project.id, account)
            raise Forbidden("The password is wrong.", errors={"password": ["Wrong password."]})

    def update_me(self, project: ProjectInfo, user: UserInfo, data=None, email=None, password=None,
                  ip: str = "") -> dict:
        settings = self._settings(project)
        current = self._find_user(project.id, user.id)
        changes: dict = {}
        new_email = None
        if email is not None:
            new_email = normalise_email(email)
            if current.get("anonymous") or not current.get("password_hash"):
                raise Conflict("Anonymous users add an email with POST /v1/auth/anonymous/upgrade.")
            if new_email != current.get("email"):
                if password is None:
                    raise Invalid("Changing the email address needs the current password.",
                                  errors={"password": ["Required to change the email address."]})
                self._confirm_password(project, current, password, ip)
                self._check_email_free(project.id, new_email)
                changes.update({"email": new_email, "email_verified": False})
            else:
                new_email = None
        if data is not None:
            merged = dict(current.get("data") or {})
            for key, value in check_profile(data).items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            changes["data"] = check_profile(merged)
        if not changes:
            return public(current)
        try:
            updated = self._col(project.id, USERS).find_one_and_update(
                {"_id": user.id}, {"$set": changes, "$currentDate": {"updated_at": True}},
                return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            raise _email_taken() from None
        if updated is None:
            raise NotFound("This user no longer exists.")
        if new_email:
            self._send_token_mail(project, settings, updated, "verify")
        return public(updated)

    def change_password(self, project: ProjectInfo, user: UserInfo, old, new, ip: str = "") -> None:
        settings = self._settings(project)
        current = self._find_user(project.id, user.id)
        if not current.get("password_hash"):
            raise Conflict("This user has no password; anonymous users set one with POST /v1/auth/anonymous/upgrade.")
        check_policy(new, settings, field="new")
        self._confirm_password(project, current, old, ip)
        self._col(project.id, USERS).update_one(
            {"_id": user.id}, {"$set": {"password_hash": self.passwords.hash(new)},
                               "$currentDate": {"updated_at": True}})
        self._revoke_sessions(project.id, {"user_id": user.id, "_id": {"$ne": user.session_id}})
        self.hooks.after("baas_after_password_change", project_id=project.id, user_id=user.id, reason="change")

    def delete_me(self, project: ProjectInfo, user: UserInfo, password=None, ip: str = "") -> None:
        current = self._find_user(project.id, user.id)
        if current.get("password_hash"):
            if password is None:
                raise Invalid("Deleting the account needs the password.",
                              errors={"password": ["Required to delete the account."]})
            self._confirm_password(project, current, password, ip)
        self._delete(project.id, user.id)

    def _delete(self, project_id: str, user_id: str) -> None:
        if self.hooks.has("baas_before_user_delete", project_id):
            self.hooks.before("baas_before_user_delete", project_id=project_id,
                              user=public(self._find_user(project_id, user_id)))
        result = self._col(project_id, USERS).delete_one({"_id": user_id})
        if result.deleted_count == 0:
            raise NotFound(f"No user '{user_id}' in this project.")
        self._mark_user(project_id, user_id, "deleted")
        self._revoke_sessions(project_id, {"user_id": user_id})
        self._col(project_id, USER_TOKENS).delete_many({"user_id": user_id})
        for forget in self.on_user_deleted:  # other features' data of the user (files, push subscriptions)
            forget(project_id, user_id)
        self.hooks.after("baas_after_user_delete", project_id=project_id, user_id=user_id)

    # ---- mailed tokens: email verification and password reset

    def _link_base(self, settings: dict) -> str:
        base = settings["mail"].get("link_base_url") or self.config["mail"]["link_base_url"] \
            or self.config["server"]["public_url"]
        if not base:
            server = self.config["server"]
            base = f"http://{server['host']}:{server['port']}"
        return base.rstrip("/")

    def _send_token_mail(self, project: ProjectInfo, settings: dict, user: dict, kind: str) -> None:
        spec = _MAILED[kind]
        hours = self.config["auth"][spec["hours"]]
        token = spec["prefix"] + random_token(32)
        now = utcnow()
        user_tokens = self._col(project.id, USER_TOKENS)
        # Only the newest link of a kind works.
        user_tokens.delete_many({"user_id": user["_id"], "kind": kind})
        user_tokens.insert_one({"_id": sha256_hex(token), "kind": kind, "user_id": user["_id"],
                                "email": user["email"], "used": False, "created_at": now,
                                "expires_at": now + timedelta(hours=hours)})
        link = f"{self._link_base(settings)}/{spec['page']}?token={token}&project={project.id}"
        values = {"link": link, "token": token, "email": user["email"], "project": project.name, "hours": hours,
                  "expires_in": f"{hours} hour" if hours == 1 else f"{hours} hours"}
        mail = settings["mail"]
        subject = render(mail[f"{kind}_subject"], values)
        body = render(mail[f"{kind}_body"], values)
        self.mailer.send(user["email"], subject, body, mail.get("sender"))

    def _consume(self, project_id: str, kind: str, token) -> dict:
        prefix, what = _MAILED[kind]["prefix"], _MAILED[kind]["what"]
        if not isinstance(token, str) or not token.startswith(prefix) or len(token) > 200:
            raise Invalid(f"Invalid {what} token.", errors={"token": ["Invalid token."]})
        doc = self._col(project_id, USER_TOKENS).find_one_and_update(
            {"_id": sha256_hex(token), "kind": kind, "used": False, "expires_at": {"$gt": utcnow()}},
            {"$set": {"used": True}, "$currentDate": {"used_at": True}})
        if doc is None:
            raise Invalid(f"This {what} link is invalid, already used or expired; ask for a new one.",
                          errors={"token": ["Invalid, used or expired."]})
        return doc

    def _update_token_owner(self, project_id: str, stored: dict, update: dict) -> dict:
        # Matching the address too: a link mailed to an old address must not act on the account's new one.
        user = self._col(project_id, USERS).find_one_and_update(
            {"_id": stored["user_id"], "email": stored["email"]}, update, return_document=ReturnDocument.AFTER)
        if user is None:
            raise Invalid("This link was sent to an email address the account no longer has.",
                          errors={"token": ["Email address changed since."]})
        return user

    def request_verification(self, project: ProjectInfo, user: UserInfo | None, email=None, ip: str = "") -> None:
        """Mail a new verification link; answers the same whether or not the address is known."""
        settings = self._settings(project)
        if user is not None:
            self._hit(project.id, "verify", ip, user.id)
        else:
            if email is None:
                raise Invalid("Send the email address, or a signed-in user's access token.",
                              errors={"email": ["Required without an access token."]})
            email = normalise_email(email)
            self._hit(project.id, "verify", ip, email_key(email))
            # Off the request for the same reason as password resets: equal timing for known and unknown addresses.
            self.mailer.in_background(self._mail_verification_link, project, settings, {"email": email})
            return
        self._mail_verification_link(project, settings, {"_id": user.id})

    def _mail_verification_link(self, project: ProjectInfo, settings: dict, who: dict) -> None:
        doc = self._col(project.id, USERS).find_one(who)
        if doc and doc.get("email") and not doc.get("email_verified") and not doc.get("disabled"):
            self._send_token_mail(project, settings, doc, "verify")

    def confirm_verification(self, project: ProjectInfo, token, ip: str = "") -> dict:
        self._hit(project.id, "verify", ip)
        stored = self._consume(project.id, "verify", token)
        user = self._update_token_owner(project.id, stored, {"$set": {"email_verified": True},
                                                             "$currentDate": {"updated_at": True}})
        return public(user)

    def request_password_reset(self, project: ProjectInfo, email, ip: str = "") -> None:
        """Mail a reset link; answers the same whether or not the address is known (no enumeration)."""
        settings = self._settings(project)
        email = normalise_email(email)
        self._hit(project.id, "reset", ip, email_key(email))
        # The lookup, token write and mail happen off the request, so a known address takes no longer to
        # answer than an unknown one (no account enumeration by timing).
        self.mailer.in_background(self._mail_reset_link, project, settings, email)

    def _mail_reset_link(self, project: ProjectInfo, settings: dict, email: str) -> None:
        doc = self._col(project.id, USERS).find_one({"email": email})
        if doc and not doc.get("disabled"):
            self._send_token_mail(project, settings, doc, "reset")

    def confirm_password_reset(self, project: ProjectInfo, token, password, ip: str = "") -> None:
        settings = self._settings(project)
        self._hit(project.id, "reset", ip)
        check_policy(password, settings)  # before using up the token, so a weak choice can be retried
        stored = self._consume(project.id, "reset", token)
        user = self._update_token_owner(project.id, stored, {
            # Opening the mailed link proves the address, too.
            "$set": {"password_hash": self.passwords.hash(password), "email_verified": True},
            "$currentDate": {"updated_at": True}})
        self._revoke_sessions(project.id, {"user_id": user["_id"]})
        self._mark_user(project.id, user["_id"], "password_reset")
        self._clear_failures(project.id, email_key(user["email"]))
        self.hooks.after("baas_after_password_change", project_id=project.id, user_id=user["_id"], reason="reset")

    # ---- administration (server keys and the admin API)

    def list_users(self, project_id: str, limit: int = 50, after: str | None = None, email: str | None = None):
        """One page of users in id order, and the cursor of the next page (or None)."""
        query: dict = {}
        if after is not None:
            query["_id"] = {"$gt": str(after)}
        if email is not None:
            query["email"] = normalise_email(email)
        docs = list(self._col(project_id, USERS).find(query, {"password_hash": 0}).sort("_id", ASCENDING)
                    .limit(limit + 1))
        next_cursor = docs[limit - 1]["_id"] if len(docs) > limit else None
        return [public(doc) for doc in docs[:limit]], next_cursor

    def get_user(self, project_id: str, user_id: str) -> dict:
        return public(self._find_user(project_id, user_id))

    def create_user(self, project: ProjectInfo, email, password=None, roles=None, data=None,
                    email_verified: bool = False, disabled: bool = False) -> dict:
        settings = self._settings(project)
        email = normalise_email(email)
        if password is not None:
            check_policy(password, settings)
        data = {} if data is None else data
        self.hooks.before("baas_before_user_signup", project_id=project.id, email=email, data=data)
        user = self._new_user(email, password, check_profile(data), roles=check_roles(roles or []),
                              email_verified=bool(email_verified), disabled=bool(disabled))
        self._insert_user(project.id, user)
        self.hooks.after("baas_after_user_signup", project_id=project.id, user=public(user))
        return public(user)

    def update_user(self, project_id: str, user_id: str, roles=None, disabled=None, email_verified=None,
                    data=None) -> dict:
        current = self._find_user(project_id, user_id)
        changes: dict = {}
        if roles is not None:
            changes["roles"] = check_roles(roles)
        if disabled is not None:
            changes["disabled"] = bool(disabled)
        if email_verified is not None:
            changes["email_verified"] = bool(email_verified)
        if data is not None:
            changes["data"] = check_profile(data)
        if not changes:
            return public(current)
        updated = self._col(project_id, USERS).find_one_and_update(
            {"_id": user_id}, {"$set": changes, "$currentDate": {"updated_at": True}},
            return_document=ReturnDocument.AFTER)
        if updated is None:
            raise NotFound(f"No user '{user_id}' in this project.")
        if changes.get("disabled") and not current.get("disabled"):
            self._mark_user(project_id, user_id, "disabled")
            self._revoke_sessions(project_id, {"user_id": user_id})
        elif "roles" in changes and changes["roles"] != current.get("roles"):
            # Tokens carry roles; older ones must not keep roles the user lost.
            self._mark_user(project_id, user_id, "changed")
        return public(updated)

    def revoke_user_sessions(self, project_id: str, user_id: str) -> int:
        """Sign a user out everywhere (admin action): its refresh tokens and access tokens stop working."""
        self._find_user(project_id, user_id)
        self._mark_user(project_id, user_id, "signed out by an administrator")
        return self._revoke_sessions(project_id, {"user_id": user_id})

    def delete_user(self, project_id: str, user_id: str) -> None:
        self._delete(project_id, user_id)
