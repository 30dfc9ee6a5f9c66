"""Request and response shapes of the push API. Bodies are validated by the service (which answers 400, as
plugins and the CLI call it too); the input schemas here state the same rules for the OpenAPI document."""
from marshmallow import Schema, fields, validate

from baas.push.service import (AUTH_SECRET_CHARS, COLLAPSE_TOPIC, MAX_AUDIENCE_USERS, MAX_ENDPOINT_LENGTH,
                               MAX_SCHEDULE_DAYS, MAX_TOPICS, MAX_TTL, NOTIFICATION_TEXT, TOPIC_NAME, URGENCIES)
from baas.push.native_schemas import ApnsOptionsSchema, FcmOptionsSchema
from baas.schemas import StrictSchema, UtcDateTime


def _topics(description: str | None = None, min_items: int = 0):
    return fields.List(fields.String(validate=validate.Regexp(TOPIC_NAME)),
                       validate=validate.Length(min=min_items, max=MAX_TOPICS),
                       metadata={"description": description} if description else {})


def _text(name: str, **kwargs):
    return fields.String(allow_none=True, validate=validate.Length(max=NOTIFICATION_TEXT[name]), **kwargs)


class PublicKeySchema(Schema):
    public_key = fields.String(metadata={"description": "applicationServerKey for pushManager.subscribe "
                                                        "(URL-safe base64 of the uncompressed P-256 point)."})
    key_id = fields.String()


class VapidKeySchema(Schema):
    id = fields.String()
    public_key = fields.String()
    created_at = UtcDateTime()
    current = fields.Boolean()


class VapidKeysSchema(VapidKeySchema):
    previous = fields.List(fields.Nested(VapidKeySchema), metadata={
        "description": "Older pairs, still signing for the subscriptions made with them until they resubscribe."})


class SubscriptionKeysSchema(Schema):
    p256dh = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{87}={0,2}$"),
                           metadata={"description": "URL-safe base64 of an uncompressed P-256 point (65 bytes)."})
    auth = fields.String(required=True, validate=validate.Regexp(rf"^[A-Za-z0-9_-]{{{AUTH_SECRET_CHARS}}}={{0,2}}$"),
                         metadata={"description": "URL-safe base64, 16 bytes."})


class SubscriptionInSchema(Schema):
    endpoint = fields.String(required=True, validate=[validate.Length(max=MAX_ENDPOINT_LENGTH),
                                                      validate.Regexp(r"^https?://[!-~]+$")],
                             metadata={"description": f"The push service's https URL (http only for the hosts "
                                                      f"push.allowed_http_hosts names), at most {MAX_ENDPOINT_LENGTH} "
                                                      "characters, without credentials or fragment."})
    keys = fields.Nested(SubscriptionKeysSchema, required=True)
    # OpenAPI 3.0's boolean exclusiveMaximum, which apispec does not write from a Range validator.
    expirationTime = fields.Float(allow_none=True, validate=validate.Range(min=0),
                                  metadata={"maximum": 1e14, "exclusiveMaximum": True,
                                            "description": "Milliseconds since 1970, or null."})
    topics = _topics(f"Up to {MAX_TOPICS} topic names.")


class SubscriptionSchema(Schema):
    id = fields.String()
    endpoint = fields.String()
    provider = fields.String()
    user_id = fields.String()
    topics = fields.List(fields.String())
    expiration_time = fields.Float(allow_none=True)
    vapid_key = fields.String()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class TopicsChangeSchema(Schema):
    """Either topics, or add and/or remove."""
    openapi_extra = {"minProperties": 1}

    topics = _topics("Replace all topics.")
    add = _topics()
    remove = _topics()


class NotificationSchema(Schema):
    title = _text("title")
    body = _text("body")
    icon = _text("icon")
    badge = _text("badge")
    url = _text("url")
    data = fields.Dict()


class NotificationInSchema(NotificationSchema):
    """At least one field that is not null; the encrypted payload must fit Web Push's 4096 bytes (400 if not)."""
    openapi_extra = {"minProperties": 1}


class AudienceSchema(Schema):
    """Exactly one of users, topics, filter or all."""
    openapi_extra = {"minProperties": 1, "maxProperties": 1}

    users = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                        validate=validate.Length(min=1, max=MAX_AUDIENCE_USERS),
                        metadata={"description": f"User ids (1 to {MAX_AUDIENCE_USERS})."})
    topics = _topics(min_items=1)
    filter = fields.Dict(metadata={"description": "A filter on user fields (as the data API's)."})
    all = fields.Boolean(validate=validate.OneOf([True]))


class MessageInSchema(Schema):
    audience = fields.Nested(AudienceSchema, required=True)
    notification = fields.Nested(NotificationInSchema, required=True)
    ttl = fields.Integer(validate=validate.Range(min=0, max=MAX_TTL), metadata={
        "description": "Seconds the push service keeps it for an offline device (default one day)."})
    urgency = fields.String(validate=validate.OneOf(URGENCIES))
    topic = fields.String(allow_none=True, validate=validate.Regexp(COLLAPSE_TOPIC), metadata={
        "description": "Collapse key: a newer message with it replaces an undelivered one."})
    send_at = fields.String(allow_none=True, metadata={
        "format": "date-time",
        "description": f"When to send, with a time zone, at most {MAX_SCHEDULE_DAYS} days ahead (default: now)."})
    providers = fields.List(fields.String(validate=validate.OneOf(["webpush", "fcm", "apns"])), metadata={
        "description": "Only these providers' devices (default: browsers and native devices alike)."})
    apns = fields.Nested(ApnsOptionsSchema, metadata={"description": "What only iPhones show (badge, sound...)."})
    fcm = fields.Nested(FcmOptionsSchema, metadata={"description": "What only Android shows (channel, sound)."})


class CountsSchema(Schema):
    total = fields.Integer()
    sent = fields.Integer()
    failed = fields.Integer()
    removed = fields.Integer()
    unconfirmed = fields.Integer(metadata={"description": "In flight when its worker died: may have arrived, "
                                                          "not resent (see push.resend_unconfirmed)."})
    pending = fields.Integer()
    cancelled = fields.Integer()


class FailureSchema(Schema):
    reason = fields.String()
    count = fields.Integer()


class MessageSchema(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "queued, sending, done or cancelled"})
    audience = fields.Dict()
    notification = fields.Nested(NotificationSchema)
    ttl = fields.Integer()
    urgency = fields.String()
    topic = fields.String(allow_none=True)
    send_at = UtcDateTime(allow_none=True)
    providers = fields.List(fields.String(), allow_none=True)
    apns = fields.Nested(ApnsOptionsSchema)
    fcm = fields.Nested(FcmOptionsSchema)
    created_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
    counts = fields.Nested(CountsSchema)
    failures = fields.List(fields.Nested(FailureSchema))


class MessageCreatedSchema(Schema):
    id = fields.String()
    status = fields.String()


class MessageListSchema(Schema):
    messages = fields.List(fields.Nested(MessageSchema))
    next = fields.String(allow_none=True, metadata={"description": "Pass as ?before= for the next page."})


class MessageListQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    before = fields.String(load_default=None, validate=validate.Length(max=64))


class DeliverySchema(Schema):
    id = fields.String(metadata={"description": "The subscription id."})
    outcome = fields.String(metadata={"description": "sent, removed, failed, unconfirmed (in flight when its worker "
                                                     "died), or retry (a later attempt follows)"})
    status = fields.Integer(allow_none=True)
    reason = fields.String()
    attempt = fields.Integer()


class DeliveryListSchema(Schema):
    deliveries = fields.List(fields.Nested(DeliverySchema))
    next = fields.String(allow_none=True, metadata={"description": "Pass as ?after= for the next page; null on the "
                                                                   "last page."})


class DeliveryListQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    after = fields.String(load_default=None, validate=validate.Length(max=200),
                          metadata={"description": "The `next` of the previous page."})
