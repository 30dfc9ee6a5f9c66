"""What a message says to native providers: `providers`, and the `apns` / `fcm` options of POST /v1/push/messages.

The notification itself (title, body, url, data...) is the same for every provider; these options add what only
a phone has (a badge count, a sound, an Android channel, a background push). The payload limits of each
provider are checked when the message is sent, so an oversized message is a 400 naming its size, not a
failure per device later.
"""
from __future__ import annotations

import re

from baas.errors import Invalid

PROVIDERS = ("webpush", "fcm", "apns")
APNS_OPTIONS = {"badge", "sound", "thread_id", "push_type", "mutable_content"}
FCM_OPTIONS = {"channel_id", "sound", "priority"}
PUSH_TYPES = ("alert", "background")
MAX_NATIVE_PAYLOAD = 4096      # APNs (alert pushes) and FCM both stop at 4 KB
SHORT_TEXT = re.compile(r"^[\x20-\x7e]{1,64}$")


def _invalid(field: str, message: str):
    return Invalid(message, errors={field: [message]})


def check_providers(value) -> list[str] | None:
    """None (every provider) or the sorted providers a message is limited to."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(p, str) for p in value) \
            or set(value) - set(PROVIDERS):
        raise _invalid("providers", f"providers is a non-empty list of {', '.join(PROVIDERS)}.")
    return sorted(set(value))


def _check_options(value, field: str, allowed: set) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(field, f"{field} is an object of {', '.join(sorted(allowed))}.")
    unknown = set(value) - allowed
    if unknown:
        raise Invalid(f"Unknown {field} options: {', '.join(sorted(unknown))}.",
                      errors={f"{field}.{n}": ["Unknown field."] for n in sorted(unknown)})
    return dict(value)


def check_native_options(body: dict) -> dict:
    """{"apns": {...}, "fcm": {...}} from a message body, each validated (absent ones left out)."""
    apns = _check_options(body.get("apns"), "apns", APNS_OPTIONS)
    badge = apns.get("badge")
    if badge is not None and (not isinstance(badge, int) or isinstance(badge, bool) or not 0 <= badge <= 99_999):
        raise _invalid("apns.badge", "apns.badge is the number on the app icon, 0 to 99999 (0 clears it).")
    for name in ("sound", "thread_id"):
        if name in apns and (not isinstance(apns[name], str) or not SHORT_TEXT.match(apns[name])):
            raise _invalid(f"apns.{name}", f"apns.{name} is 1 to 64 printable ASCII characters.")
    if apns.get("push_type", "alert") not in PUSH_TYPES:
        raise _invalid("apns.push_type", "apns.push_type is 'alert' or 'background'.")
    if "mutable_content" in apns and not isinstance(apns["mutable_content"], bool):
        raise _invalid("apns.mutable_content", "apns.mutable_content is true or false.")
    fcm = _check_options(body.get("fcm"), "fcm", FCM_OPTIONS)
    for name in ("channel_id", "sound"):
        if name in fcm and (not isinstance(fcm[name], str) or not SHORT_TEXT.match(fcm[name])):
            raise _invalid(f"fcm.{name}", f"fcm.{name} is 1 to 64 printable ASCII characters.")
    if fcm.get("priority", "normal") not in ("normal", "high"):
        raise _invalid("fcm.priority", "fcm.priority is 'normal' or 'high' (default: from urgency).")
    return {name: options for name, options in (("apns", apns), ("fcm", fcm)) if options}


def check_native_payloads(notification: dict, message_id: str, providers: list | None, native: dict,
                          ttl: int, urgency: str, topic: str | None) -> None:
    """400 naming the size when the APNs or FCM payload of this message would pass 4 KB."""
    from baas.push.apns import apns_payload
    from baas.push.fcm import fcm_payload_size

    if "data" in notification and "aps" in notification["data"] and (providers is None or "apns" in providers):
        raise _invalid("notification.data", "notification.data may not use the key 'aps' (APNs reserves it).")
    note = {**notification, "message_id": message_id}
    sizes = {}
    if providers is None or "apns" in providers:
        sizes["APNs"] = len(apns_payload(note, native.get("apns") or {}))
    if providers is None or "fcm" in providers:
        sizes["FCM"] = fcm_payload_size(note, native, ttl, urgency, topic)
    for name, size in sizes.items():
        if size > MAX_NATIVE_PAYLOAD:
            raise Invalid(f"The {name} payload would be {size} bytes; {name} allows at most {MAX_NATIVE_PAYLOAD}. "
                          f"Shorten the text or the data by {size - MAX_NATIVE_PAYLOAD} bytes.",
                          errors={"notification": [f"{name} payload {size} bytes > {MAX_NATIVE_PAYLOAD}."]})
