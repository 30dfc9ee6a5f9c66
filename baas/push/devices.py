"""Native devices: FCM and APNs tokens of signed-in users, beside the Web Push subscriptions.

A device lives in the same `_push_subscriptions` collection as a browser subscription, with `provider` "fcm" or
"apns" and the endpoint "<provider>:<token>". That makes (provider, token) unique through the endpoint index
that already makes browsers unique, and lets every audience (users, topics, filter, all), the delivery queue and
the removal of a deleted user's subscriptions cover browsers and phones alike.
"""
from __future__ import annotations

import re

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from baas.errors import Invalid, NotFound
from baas.util import new_id, utcnow

NATIVE_PROVIDERS = ("fcm", "apns")
PLATFORMS = {"fcm": ("android", "ios"), "apns": ("ios",)}
# Apple's tokens were 32 bytes (64 hex digits); Apple says they may grow, so up to 100 bytes are taken.
APNS_TOKEN = re.compile(r"^(?:[0-9a-fA-F]{2}){32,100}$")
# FCM tokens are opaque (about 160 characters today): printable ASCII without spaces, bounded.
FCM_TOKEN = re.compile(r"^[\x21-\x7e]{16,1024}$")
APP_VERSION = re.compile(r"^[\x20-\x7e]{1,64}$")
LOCALE = re.compile(r"^[A-Za-z]{2,8}(?:[_-][A-Za-z0-9]{1,8}){0,4}$")
FIELDS = {"provider", "token", "platform", "topics", "app_version", "locale"}


def _invalid(field: str, message: str):
    return Invalid(message, errors={field: [message]})


def _public(doc: dict) -> dict:
    return {"id": doc["_id"], "provider": doc["provider"], "token": doc["token"], "platform": doc["platform"],
            "topics": doc.get("topics") or [], "app_version": doc.get("app_version"), "locale": doc.get("locale"),
            "user_id": doc["user_id"], "created_at": doc["created_at"], "updated_at": doc["updated_at"]}


class Devices:
    def __init__(self, service):
        self.service = service          # baas.push.service.PushService: its collections and topic rules

    def check(self, body) -> dict:
        if not isinstance(body, dict):
            raise Invalid("Send {provider, token, platform, topics?, app_version?, locale?}.")
        unknown = set(body) - FIELDS
        if unknown:
            raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.",
                          errors={name: ["Unknown field."] for name in sorted(unknown)})
        provider = body.get("provider")
        if provider not in NATIVE_PROVIDERS:
            raise _invalid("provider", "provider is 'fcm' (Firebase, Android or iOS) or 'apns' (iOS).")
        token = body.get("token")
        if provider == "apns":
            if not isinstance(token, str) or not APNS_TOKEN.match(token):
                raise _invalid("token", "An APNs token is the device token in hexadecimal: 64 to 200 hex digits.")
            token = token.lower()
        elif not isinstance(token, str) or not FCM_TOKEN.match(token):
            raise _invalid("token", "An FCM token is 16 to 1024 printable characters without spaces.")
        platform = body.get("platform", "ios" if provider == "apns" else "android")
        if platform not in PLATFORMS[provider]:
            raise _invalid("platform", f"platform for {provider} is one of {', '.join(PLATFORMS[provider])}.")
        app_version, locale = body.get("app_version"), body.get("locale")
        if app_version is not None and (not isinstance(app_version, str) or not APP_VERSION.match(app_version)):
            raise _invalid("app_version", "app_version is 1 to 64 printable characters.")
        if locale is not None and (not isinstance(locale, str) or not LOCALE.match(locale)):
            raise _invalid("locale", "locale is a language tag such as en, en-US or pt_BR.")
        return {"provider": provider, "token": token, "platform": platform, "app_version": app_version,
                "locale": locale, "topics": self.service.check_topics(body.get("topics"))}

    def register(self, principal, body) -> tuple[dict, bool]:
        """Upsert by (provider, token) for the calling user: a refreshed install updates, a new owner takes it."""
        principal.require_scope("push:subscribe")
        user = principal.require_user()
        fields = self.check(body)
        col = self.service.subscriptions(principal.project.id)
        endpoint = f"{fields['provider']}:{fields['token']}"
        now = utcnow()
        doc = {**fields, "endpoint": endpoint, "user_id": user.id, "updated_at": now}
        for _ in range(3):
            existing = col.find_one({"endpoint": endpoint})
            if existing is not None:
                if "topics" not in body and existing.get("user_id") == user.id:
                    doc["topics"] = existing.get("topics") or []   # a token refresh keeps the user's topics
                kept = {"_id": existing["_id"], "created_at": existing["created_at"]}
                replaced = col.replace_one({"_id": existing["_id"], "updated_at": existing["updated_at"]},
                                           {**doc, **kept})
                if replaced.matched_count:
                    if existing.get("user_id") != user.id:  # the device changed hands: one more for this user
                        self.service.keep_newest_subscriptions(principal.project.id, user.id, existing["_id"])
                    return _public({**doc, **kept}), False
                continue
            try:
                created = {**doc, "_id": new_id("pd_"), "created_at": now}
                col.insert_one(created)
                self.service.keep_newest_subscriptions(principal.project.id, user.id, created["_id"])
                return _public(created), True
            except DuplicateKeyError:  # registered twice at once: the next round updates the winner
                continue
        raise Invalid("The device changed meanwhile; try again.")

    def list(self, principal) -> list[dict]:
        principal.require_scope("push:subscribe")
        user = principal.require_user()
        docs = self.service.subscriptions(principal.project.id).find(
            {"user_id": user.id, "provider": {"$in": list(NATIVE_PROVIDERS)}}).sort("_id", ASCENDING).limit(1000)
        return [_public(doc) for doc in docs]

    def delete(self, principal, device_id: str) -> None:
        principal.require_scope("push:subscribe")
        if not isinstance(device_id, str) or len(device_id) > 64:
            raise NotFound("No such device.")
        query = {"_id": device_id, "provider": {"$in": list(NATIVE_PROVIDERS)}}
        if not principal.is_server:
            query["user_id"] = principal.require_user().id
        if self.service.subscriptions(principal.project.id).delete_one(query).deleted_count == 0:
            raise NotFound("No such device.")
