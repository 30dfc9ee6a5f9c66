"""Web Push rules: VAPID keys, subscriptions tied to users, and messages queued for background delivery.

Storage:
  project db  _push_subscriptions   one per device (unique endpoint), with its user, topics and VAPID key id
  project db  _push_messages        one per send: audience, notification, status
  platform    push_queue            the work of every project in one place, so a worker finds what is due
                                    with one indexed query instead of scanning every project database:
                                    a "plan" item per message (due at send_at) that expands the audience into
                                    "batch" items, which carry their per-subscription results.
  platform    push_targets          the subscriptions (endpoint, keys) of each batch item, by the same _id:
                                    written once, read once by the worker that claims the batch.
"""
from __future__ import annotations

import re
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from baas.egress import LookupTimedOut, TargetRefused, resolve_public
from baas.errors import Invalid, NotFound, ServiceUnavailable
from baas.push.native import check_native_options, check_native_payloads, check_providers
from baas.push.providers import MAX_ENCRYPTED_PAYLOAD, REMOVED, SENT, encrypted_size
from baas.push.vapid import b64url_decode
from baas.query import LOGICAL, check_document_keys, compile_filter, parse_iso_datetime
from baas.sealing import verify_shared_key
from baas.storage.mongo import ensure_index
from baas.util import new_id, utcnow

SUBSCRIPTIONS = "_push_subscriptions"
SUBSCRIBE_LOOKUP_SECONDS = 3.0  # a subscribe waits this long for DNS, on a request thread
MESSAGES = "_push_messages"
QUEUE = "push_queue"
TARGETS = "push_targets"

MAX_ENDPOINT_LENGTH = 2048
MAX_TOPICS = 50
MAX_AUDIENCE_USERS = 1000
MAX_TTL = 28 * 86400
MAX_SCHEDULE_DAYS = 366
URGENCIES = ("very-low", "low", "normal", "high")
NOTIFICATION_TEXT = {"title": 256, "body": 2048, "icon": 2048, "badge": 2048, "url": 2048}
TOPIC_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
COLLAPSE_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # RFC 8030 §5.4: at most 32 URL-safe base64 characters
B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
AUTH_SECRET_CHARS = 22  # 16 bytes in unpadded base64
# The user fields an audience filter may name: the same public fields the users API shows, never secrets.
USER_FILTER_FIELDS = frozenset({"_id", "email", "email_verified", "anonymous", "roles", "disabled", "data",
                                "created_at", "updated_at", "last_login_at"})
USER_DATE_FIELDS = frozenset({"created_at", "updated_at", "last_login_at"})
MESSAGE_STATES = ("queued", "sending", "done", "cancelled")
# The outcome of a delivery whose request was in flight when its worker died: it may or may not have arrived.
UNCONFIRMED = "unconfirmed"


def _invalid(field: str, message: str, detail: str | None = None):
    return Invalid(message, errors={field: [detail or message]})


class PushService:
    def __init__(self, mongo, projects, hooks, keys, config: dict):
        self.mongo = mongo
        self.projects = projects
        self.hooks = hooks
        self.keys = keys                       # baas.push.vapid.VapidKeys
        self.credentials = None                # baas.push.credentials.NativeCredentials, set by baas.push
        self.config = config["push"]
        self.allowed_http_hosts = frozenset(h.lower() for h in self.config["allow_http_hosts"])
        self.queue = mongo.platform[QUEUE]
        self.targets = mongo.platform[TARGETS]
        self._indexed: set = set()

    # ---- storage

    def ensure_indexes(self) -> None:
        ensure_index(self.queue, [("state", ASCENDING), ("due", ASCENDING)], name="state_due")
        ensure_index(self.queue, [("message_id", ASCENDING), ("state", ASCENDING)], name="message_state")
        ensure_index(self.queue, [("created_ts", ASCENDING)], name="created_ts")
        ensure_index(self.targets, [("written_ts", ASCENDING)], name="written_ts")
        verify_shared_key(self.mongo.platform["meta"], self.keys.sealer)
        self.keys.migrate()  # VAPID keys sealed by an older version, or under a previous encryption key
        if self.credentials is not None:
            self.credentials.migrate()   # FCM and APNs keys sealed under a previous encryption key

    def _col(self, project_id: str, name: str):
        if project_id not in self._indexed:
            db = self.mongo.project_db(project_id)
            ensure_index(db[SUBSCRIPTIONS], [("endpoint", ASCENDING)], name="endpoint_unique", unique=True)
            ensure_index(db[SUBSCRIPTIONS], [("user_id", ASCENDING)], name="user_id")
            ensure_index(db[SUBSCRIPTIONS], [("topics", ASCENDING)], name="topics")
            ensure_index(db[MESSAGES], [("created_at", DESCENDING)], name="created_at")
            if not self._indexed:
                self.ensure_indexes()
            self._indexed.add(project_id)
        return self.mongo.project_db(project_id)[name]

    def subscriptions(self, project_id: str):
        return self._col(project_id, SUBSCRIPTIONS)

    def messages(self, project_id: str):
        return self._col(project_id, MESSAGES)

    def forget_project(self, project_id: str) -> None:
        self._indexed.discard(project_id)
        self.queue.delete_many({"project_id": project_id})
        self.targets.delete_many({"project_id": project_id})
        self.keys.forget(project_id)

    @staticmethod
    def _project(principal, project_id: str | None, projects):
        if project_id is None or (principal.project is not None and principal.project.id == project_id):
            if principal.project is None:
                raise NotFound("No project.")
            return principal.project
        if principal.admin:
            return projects.info(project_id)
        raise NotFound(f"No project '{project_id}'.")

    def _sender(self, principal, project_id: str | None = None):
        project = self._project(principal, project_id, self.projects)
        principal.require_server()
        principal.require_scope("push:send")
        return project

    # ---- VAPID keys

    def public_key(self, principal) -> dict:
        principal.require_scope("push:subscribe")
        current = self.keys.current(principal.project.id)
        return {"public_key": current["public_key"], "key_id": current["id"]}

    def vapid_keys(self, project_id: str) -> dict:
        self.projects.get(project_id)
        return self.keys.describe_all(project_id)

    def rotate_vapid_keys(self, project_id: str) -> dict:
        self.projects.get(project_id)
        return self.keys.rotate(project_id)

    # ---- subscriptions

    def check_endpoint(self, endpoint) -> str:
        if not isinstance(endpoint, str) or not endpoint:
            raise _invalid("endpoint", "endpoint must be the push service URL of the subscription.")
        if len(endpoint) > MAX_ENDPOINT_LENGTH:
            raise _invalid("endpoint", f"endpoint is longer than {MAX_ENDPOINT_LENGTH} characters.")
        try:
            parts = urlsplit(endpoint)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise _invalid("endpoint", "endpoint is not a valid URL.") from None
        if not host or parts.username is not None or parts.password is not None or parts.fragment \
                or any(ord(c) < 33 or ord(c) > 126 for c in endpoint):
            raise _invalid("endpoint", "endpoint must be an absolute URL without credentials, spaces or fragment.")
        allowed = host in self.allowed_http_hosts
        if parts.scheme != "https" and not (parts.scheme == "http" and allowed):
            raise _invalid("endpoint", "endpoint must be an https URL.")
        if not allowed:
            # Push services are public hosts; an endpoint naming this network would make the worker post to it.
            # Checked again at every delivery (baas.push.providers), where the connection is pinned to the
            # checked address: a name may be re-pointed after it was accepted here.
            local = _invalid("endpoint", "endpoint must be a public push service, not a local address.")
            if host == "localhost" or host.endswith(".localhost"):
                raise local
            try:
                resolve_public(host, parts.port or 443, timeout=SUBSCRIBE_LOOKUP_SECONDS)
            except TargetRefused:
                raise local from None
            except LookupTimedOut:
                raise ServiceUnavailable("The endpoint's host name could not be looked up in time; retry shortly.",
                                         headers={"Retry-After": "5"}) from None
            except OSError:
                raise _invalid("endpoint", "endpoint's host name does not resolve.") from None
        return endpoint

    @staticmethod
    def check_keys(keys) -> dict:
        if not isinstance(keys, dict):
            raise Invalid("keys must be an object with p256dh and auth.", errors={"keys": ["Must be an object."]})
        p256dh, auth = keys.get("p256dh"), keys.get("auth")
        if not isinstance(p256dh, str) or len(p256dh) > 200 or not B64URL.match(p256dh):
            raise _invalid("keys.p256dh", "keys.p256dh must be URL-safe base64.")
        try:
            raw = b64url_decode(p256dh.rstrip("="))  # binascii.Error (a ValueError) for 4n+1 characters
            if len(raw) != 65 or raw[0] != 4:
                raise ValueError
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise _invalid("keys.p256dh", "keys.p256dh must be an uncompressed P-256 public key (65 bytes).") \
                from None
        if not isinstance(auth, str) or len(auth) > 64 or not B64URL.match(auth) \
                or len(auth.rstrip("=")) != AUTH_SECRET_CHARS:
            raise _invalid("keys.auth", "keys.auth must be 16 bytes in URL-safe base64.")
        return {"p256dh": p256dh.rstrip("="), "auth": auth.rstrip("=")}

    @staticmethod
    def check_topics(topics, field: str = "topics") -> list:
        if topics is None:
            return []
        if not isinstance(topics, list) or len(topics) > MAX_TOPICS:
            raise _invalid(field, f"{field} must be a list of at most {MAX_TOPICS} topic names.")
        for topic in topics:
            if not isinstance(topic, str) or not TOPIC_NAME.match(topic):
                raise _invalid(field, f"Topic names are 1 to 64 letters, digits, '_', '.', ':' or '-'; got {topic!r}.")
        return sorted(set(topics))

    def subscribe(self, principal, body) -> tuple[dict, bool]:
        """Store the browser's PushSubscription for the calling user; the same endpoint again updates it."""
        principal.require_scope("push:subscribe")
        user = principal.require_user()
        if not isinstance(body, dict):
            raise Invalid("Send the PushSubscription JSON: {endpoint, keys: {p256dh, auth}, topics?}.")
        unknown = set(body) - {"endpoint", "keys", "expirationTime", "topics"}
        if unknown:
            raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.",
                          errors={name: ["Unknown field."] for name in sorted(unknown)})
        endpoint = self.check_endpoint(body.get("endpoint"))
        keys = self.check_keys(body.get("keys"))
        expiration = body.get("expirationTime")
        if expiration is not None and (not isinstance(expiration, (int, float)) or isinstance(expiration, bool)
                                       or not 0 <= expiration < 1e14):
            raise _invalid("expirationTime", "expirationTime must be null or milliseconds since 1970.")
        topics = self.check_topics(body.get("topics"))
        project_id = principal.project.id
        col = self.subscriptions(project_id)
        now = utcnow()
        doc = {"endpoint": endpoint, "provider": "webpush", "keys": keys, "expiration_time": expiration,
               "user_id": user.id, "topics": topics, "vapid_key": self.keys.current(project_id)["id"],
               "updated_at": now}
        for _ in range(3):
            existing = col.find_one({"endpoint": endpoint})
            if existing is not None:
                if "topics" not in body:
                    doc["topics"] = existing.get("topics") or []
                replaced = col.replace_one({"_id": existing["_id"], "updated_at": existing["updated_at"]},
                                           {**doc, "_id": existing["_id"], "created_at": existing["created_at"]})
                if replaced.matched_count:
                    if existing.get("user_id") != user.id:  # the browser changed hands: one more for this user
                        self.keep_newest_subscriptions(project_id, user.id, existing["_id"])
                    return self._public({**doc, "_id": existing["_id"], "created_at": existing["created_at"]}), False
                continue
            try:
                doc = {**doc, "_id": new_id("ps_"), "created_at": now}
                col.insert_one(doc)
                self.keep_newest_subscriptions(project_id, user.id, doc["_id"])
                return self._public(doc), True
            except DuplicateKeyError:  # the same device subscribed twice at once: update the winner
                doc.pop("_id"), doc.pop("created_at")
        raise Invalid("The subscription changed meanwhile; try again.")

    @staticmethod
    def _public(doc: dict) -> dict:
        return {"id": doc["_id"], **{k: v for k, v in doc.items() if k not in ("keys", "_id")}}

    def keep_newest_subscriptions(self, project_id: str, user_id: str, added_id: str) -> None:
        """After `added_id` was given to the user: drop their least recently updated subscriptions and devices
        beyond push.max_subscriptions_per_user. Browsers and reinstalled apps leave dead ones behind, and without
        a bound one account could make every message to it fan out to any number of endpoints."""
        keep_besides = self.config["max_subscriptions_per_user"] - 1
        col = self.subscriptions(project_id)
        oldest = [doc["_id"] for doc in col.find({"user_id": user_id, "_id": {"$ne": added_id}}, {"_id": 1})
                  .sort([("updated_at", DESCENDING), ("_id", DESCENDING)]).skip(keep_besides)]
        if oldest:
            col.delete_many({"_id": {"$in": oldest}, "user_id": user_id})

    def _own_subscription(self, principal, subscription_id: str) -> dict:
        if not isinstance(subscription_id, str) or len(subscription_id) > 64:
            raise NotFound("No such subscription.")
        query = {"_id": subscription_id, "provider": "webpush"}
        if not principal.is_server:
            query["user_id"] = principal.require_user().id
        doc = self.subscriptions(principal.project.id).find_one(query)
        if doc is None:
            raise NotFound("No such subscription.")
        return doc

    def list_subscriptions(self, principal) -> list[dict]:
        principal.require_scope("push:subscribe")
        user = principal.require_user()
        docs = self.subscriptions(principal.project.id).find({"user_id": user.id, "provider": "webpush"}) \
            .sort("_id", ASCENDING).limit(1000)
        return [self._public(doc) for doc in docs]

    def change_topics(self, principal, subscription_id: str, body) -> dict:
        principal.require_scope("push:subscribe")
        current = self._own_subscription(principal, subscription_id)
        if not isinstance(body, dict) or not body or set(body) - {"topics", "add", "remove"}:
            raise Invalid("Send {\"topics\": [...]} to replace the topics, or {\"add\": [...], \"remove\": [...]}.")
        if "topics" in body:
            if set(body) != {"topics"}:
                raise Invalid("Send either topics or add/remove, not both.")
            topics = set(self.check_topics(body["topics"]))
        else:
            topics = (set(current.get("topics") or []) | set(self.check_topics(body.get("add"), "add"))) \
                - set(self.check_topics(body.get("remove"), "remove"))
        if len(topics) > MAX_TOPICS:
            raise _invalid("topics", f"A subscription has at most {MAX_TOPICS} topics.")
        col = self.subscriptions(principal.project.id)
        col.update_one({"_id": current["_id"]}, {"$set": {"topics": sorted(topics)},
                                                  "$currentDate": {"updated_at": True}})
        return self._public(col.find_one({"_id": current["_id"]}))

    def unsubscribe(self, principal, subscription_id: str) -> None:
        principal.require_scope("push:subscribe")
        doc = self._own_subscription(principal, subscription_id)
        self.subscriptions(principal.project.id).delete_one({"_id": doc["_id"]})

    def delete_user_subscriptions(self, project_id: str, user_id: str) -> int:
        return self.subscriptions(project_id).delete_many({"user_id": user_id}).deleted_count

    # ---- messages

    def check_audience(self, audience) -> dict:
        if not isinstance(audience, dict) or len(audience) != 1:
            raise _invalid("audience", "audience is one of {\"users\": [...]}, {\"topics\": [...]}, "
                                       "{\"filter\": {...}} or {\"all\": true}.")
        (kind, value), = audience.items()
        if kind == "users":
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_AUDIENCE_USERS \
                    or not all(isinstance(u, str) and 0 < len(u) <= 64 for u in value):
                raise _invalid("audience.users", f"audience.users is a list of 1 to {MAX_AUDIENCE_USERS} user ids.")
            return {"users": sorted(set(value))}
        if kind == "topics":
            topics = self.check_topics(value, "audience.topics")
            if not topics:
                raise _invalid("audience.topics", "audience.topics names at least one topic.")
            return {"topics": topics}
        if kind == "filter":
            compile_user_filter(value)
            # Stored as JSON text: a filter's operator keys ($in, $or) are not field names a document should hold.
            return {"filter": orjson.dumps(value).decode()}
        if kind == "all":
            if value is not True:
                raise _invalid("audience.all", "audience.all must be true.")
            return {"all": True}
        raise _invalid("audience", f"Unknown audience '{kind}'; use users, topics, filter or all.")

    @staticmethod
    def check_notification(notification) -> dict:
        if not isinstance(notification, dict):
            raise _invalid("notification", "notification is an object: title, body, icon, badge, url, data.")
        unknown = set(notification) - set(NOTIFICATION_TEXT) - {"data"}
        if unknown:
            raise Invalid(f"Unknown notification fields: {', '.join(sorted(unknown))}.",
                          errors={f"notification.{n}": ["Unknown field."] for n in sorted(unknown)})
        for name, limit in NOTIFICATION_TEXT.items():
            value = notification.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                raise _invalid(f"notification.{name}", f"notification.{name} is a string of at most {limit} "
                                                       "characters.")
        if "data" in notification and not isinstance(notification["data"], dict):
            raise _invalid("notification.data", "notification.data is a JSON object.")
        check_document_keys(notification.get("data"), "notification.data")  # it is stored with the message
        shown = {k: v for k, v in notification.items() if v is not None}
        if not shown:
            raise _invalid("notification", "notification needs at least a title, a body or data.")
        return shown

    def send(self, principal, body, project_id: str | None = None) -> dict:
        """Queue a message for delivery (now or at send_at); returns it with status 'queued'."""
        project = self._sender(principal, project_id)
        if not isinstance(body, dict):
            raise Invalid("Send {audience, notification, ttl?, urgency?, topic?, send_at?}.")
        unknown = set(body) - {"audience", "notification", "ttl", "urgency", "topic", "send_at", "providers",
                               "apns", "fcm"}
        if unknown:
            raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.",
                          errors={name: ["Unknown field."] for name in sorted(unknown)})
        audience = self.check_audience(body.get("audience"))
        notification = self.check_notification(body.get("notification"))
        providers = check_providers(body.get("providers"))
        native = check_native_options(body)
        ttl = body.get("ttl", 86400)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_TTL:
            raise _invalid("ttl", f"ttl is whole seconds from 0 to {MAX_TTL} (28 days).")
        urgency = body.get("urgency", "normal")
        if urgency not in URGENCIES:
            raise _invalid("urgency", f"urgency is one of {', '.join(URGENCIES)}.")
        topic = body.get("topic")
        if topic is not None and (not isinstance(topic, str) or not COLLAPSE_TOPIC.match(topic)):
            raise _invalid("topic", "topic (the collapse key) is 1 to 32 letters, digits, '_' or '-'.")
        now = utcnow()
        send_at = body.get("send_at")
        if send_at is not None:
            parsed = parse_iso_datetime(send_at) if isinstance(send_at, str) else None
            if parsed is None:
                raise _invalid("send_at", "send_at is an ISO 8601 time with a time zone, e.g. 2030-01-31T09:00:00Z.")
            if parsed > now + timedelta(days=MAX_SCHEDULE_DAYS):
                raise _invalid("send_at", f"send_at is at most {MAX_SCHEDULE_DAYS} days ahead.")
            send_at = parsed
        proposed = {"audience": audience, "notification": notification, "ttl": ttl, "urgency": urgency,
                    "topic": topic, "send_at": send_at}
        self.hooks.before("baas_before_push_send", project_id=project.id, message=proposed)
        notification = self.check_notification(proposed["notification"])  # a plugin's change obeys the rules
        message_id = message_id_now()
        payload = orjson.dumps({**notification, "message_id": message_id})
        size = encrypted_size(len(payload))
        if size > MAX_ENCRYPTED_PAYLOAD and (providers is None or "webpush" in providers):
            raise Invalid(f"The encrypted notification would be {size} bytes; Web Push allows at most "
                          f"{MAX_ENCRYPTED_PAYLOAD}. Shorten the text or the data by {size - MAX_ENCRYPTED_PAYLOAD} "
                          "bytes.", errors={"notification": [f"Encrypted size {size} bytes > "
                                                             f"{MAX_ENCRYPTED_PAYLOAD}."]})
        check_native_payloads(notification, message_id, providers, native, ttl, urgency, topic)
        due = send_at.timestamp() if send_at is not None else time.time()
        message = {"_id": message_id, "status": "queued", "audience": audience, "notification": notification,
                   "payload": payload.decode(), "ttl": ttl, "urgency": urgency, "topic": topic, "send_at": send_at,
                   "providers": providers, "native": native,
                   "created_at": now, "created_ts": now.timestamp(), "planned": False, "total": None,
                   "sent_by": "admin" if principal.admin else (principal.key.id if principal.key else None)}
        self.messages(project.id).insert_one(message)
        self.queue.insert_one({"_id": f"{message_id}:plan", "kind": "plan", "project_id": project.id,
                               "message_id": message_id, "state": "pending", "due": due, "after": None, "page": 0,
                               "total": 0, "created_ts": now.timestamp()})
        shown = self.describe(project.id, message, counts=False)
        self.hooks.after("baas_after_push_send", project_id=project.id, message=shown)
        return shown

    def _message(self, project_id: str, message_id: str) -> dict:
        doc = self.messages(project_id).find_one({"_id": message_id}) if isinstance(message_id, str) else None
        if doc is None:
            raise NotFound(f"No push message '{message_id}'.")
        return doc

    def get_message(self, principal, message_id: str, project_id: str | None = None) -> dict:
        project = self._sender(principal, project_id)
        return self.describe(project.id, self._message(project.id, message_id))

    def list_messages(self, principal, limit: int = 50, before: str | None = None,
                      project_id: str | None = None) -> dict:
        project = self._sender(principal, project_id)
        query = {"_id": {"$lt": before}} if before else {}
        docs = list(self.messages(project.id).find(query, {"payload": 0}).sort("_id", DESCENDING).limit(limit + 1))
        more = len(docs) > limit
        docs = docs[:limit]
        return {"messages": [self.describe(project.id, d, counts=False) for d in docs],
                "next": docs[-1]["_id"] if more and docs else None}

    def cancel_message(self, principal, message_id: str, project_id: str | None = None) -> dict:
        """Stop what is not sent yet; deliveries already made stay made."""
        project = self._sender(principal, project_id)
        message = self._message(project.id, message_id)
        if message["status"] in ("queued", "sending"):
            self.messages(project.id).update_one({"_id": message_id, "status": {"$in": ["queued", "sending"]}},
                                                 {"$set": {"status": "cancelled"},
                                                  "$currentDate": {"finished_at": True}})
            self.queue.update_many({"message_id": message_id, "project_id": project.id, "state": "pending"},
                                   {"$set": {"state": "cancelled"}})
        return self.describe(project.id, self._message(project.id, message_id))

    def describe(self, project_id: str, message: dict, counts: bool = True) -> dict:
        shown = {"id": message["_id"], "status": message["status"], "audience": dict(message["audience"]),
                 "notification": message["notification"], "ttl": message["ttl"], "urgency": message["urgency"],
                 "topic": message.get("topic"), "send_at": message.get("send_at"),
                 "providers": message.get("providers"), **(message.get("native") or {}),
                 "created_at": message["created_at"], "finished_at": message.get("finished_at")}
        if "filter" in shown["audience"]:
            shown["audience"]["filter"] = orjson.loads(shown["audience"]["filter"])
        if counts:
            shown.update(self._counts(project_id, message))
        return shown

    def _counts(self, project_id: str, message: dict) -> dict:
        tally = {"sent": 0, "failed": 0, "removed": 0, UNCONFIRMED: 0}
        reasons: dict[str, int] = {}
        total = message.get("total")
        plan = None
        for item in self.queue.find({"message_id": message["_id"], "project_id": project_id},
                                    {"results": 1, "kind": 1, "total": 1}):
            if item["kind"] == "plan":
                plan = item
                continue
            for result in decode_results(item):
                outcome = result["outcome"]
                if outcome == "retry":
                    continue
                tally[outcome if outcome in (SENT, REMOVED, UNCONFIRMED) else "failed"] += 1
                if outcome not in (SENT, REMOVED):
                    reasons[result["reason"]] = reasons.get(result["reason"], 0) + 1
        if total is None:
            total = plan["total"] if plan else 0
        unsent = max(0, total - sum(tally.values()))
        cancelled = unsent if message["status"] == "cancelled" else 0
        return {"counts": {"total": total, **tally, "pending": unsent - cancelled, "cancelled": cancelled},
                "failures": [{"reason": r, "count": n} for r, n in sorted(reasons.items(), key=lambda x: -x[1])]}

    def deliveries(self, principal, message_id: str, limit: int = 100, after: str | None = None,
                   project_id: str | None = None) -> dict:
        """One page of per-subscription results, and the cursor of the next page (None after the last).

        Results live in their batch items (in _id order, each in the order recorded), so the cursor names an
        item and how many of its results were already shown: pages stay correct while results are still
        being added, and a page never reads more than the items it shows.
        """
        project = self._sender(principal, project_id)
        self._message(project.id, message_id)
        start_item, skip = None, 0
        if after is not None:
            start_item, _, count = after.rpartition("@")
            if not start_item.startswith(f"{message_id}:") or not count.isdigit() or len(count) > 6:
                raise Invalid("The cursor is invalid or belongs to another message; start again without it.",
                              errors={"after": ["Invalid cursor."]})
            skip = int(count)
        query = {"message_id": message_id, "project_id": project.id, "kind": "batch"}
        if start_item is not None:
            query["_id"] = {"$gte": start_item}
        rows: list = []
        next_cursor = None
        for item in self.queue.find(query, {"results": 1}).sort("_id", ASCENDING).batch_size(8):
            results = decode_results(item)
            offset = skip if item["_id"] == start_item else 0
            room = limit - len(rows)
            if room <= 0 or len(results) - offset > room:
                if room > 0:
                    rows.extend(results[offset:offset + room])
                    next_cursor = f"{item['_id']}@{offset + room}"
                else:
                    next_cursor = f"{item['_id']}@{offset}"
                break
            rows.extend(results[offset:])
        return {"deliveries": rows, "next": next_cursor}


def message_id_now() -> str:
    """A message id that sorts by creation time (milliseconds first), so lists page newest-first by _id."""
    return f"pm_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def decode_results(item: dict) -> list[dict]:
    """The per-subscription results of a batch item (stored as JSON text, see baas.push.delivery.encode)."""
    return [orjson.loads(r) if isinstance(r, str) else r for r in item.get("results") or ()]


def compile_user_filter(query) -> dict:
    """Compile an audience filter over user fields (baas.query's compiler, limited to the public user fields)."""
    compiled = compile_filter(query, USER_DATE_FIELDS, where="audience.filter")
    _check_user_fields(query)
    return compiled


def _check_user_fields(query) -> None:
    if isinstance(query, list):
        for item in query:
            _check_user_fields(item)
        return
    if not isinstance(query, dict):
        return
    for key, value in query.items():
        if key in LOGICAL:
            _check_user_fields(value)
        elif not key.startswith("$") and key.split(".")[0] not in USER_FILTER_FIELDS:
            raise _invalid("audience.filter", f"An audience filter may use the user fields "
                                              f"{', '.join(sorted(USER_FILTER_FIELDS))}; not '{key}'.")

