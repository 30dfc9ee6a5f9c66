"""Request and response shapes of the push API (bodies are validated by the service, which answers 400)."""
from marshmallow import Schema, fields, validate

from baas.schemas import StrictSchema, UtcDateTime


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
    p256dh = fields.String(required=True, metadata={"description": "URL-safe base64, 65-byte P-256 point."})
    auth = fields.String(required=True, metadata={"description": "URL-safe base64, 16 bytes."})


class SubscriptionInSchema(Schema):
    endpoint = fields.String(required=True, metadata={"description": "https URL, at most 2048 characters."})
    keys = fields.Nested(SubscriptionKeysSchema, required=True)
    expirationTime = fields.Float(allow_none=True)
    topics = fields.List(fields.String(), metadata={"description": "Up to 50 topic names."})


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
    topics = fields.List(fields.String(), metadata={"description": "Replace all topics."})
    add = fields.List(fields.String())
    remove = fields.List(fields.String())


class NotificationSchema(Schema):
    title = fields.String()
    body = fields.String()
    icon = fields.String()
    badge = fields.String()
    url = fields.String()
    data = fields.Dict()


class AudienceSchema(Schema):
    users = fields.List(fields.String(), metadata={"description": "User ids (at most 1000)."})
    topics = fields.List(fields.String())
    filter = fields.Dict(metadata={"description": "A filter on user fields (as the data API's)."})
    all = fields.Boolean()


class MessageInSchema(Schema):
    audience = fields.Nested(AudienceSchema, required=True, metadata={"description": "Exactly one key."})
    notification = fields.Nested(NotificationSchema, required=True)
    ttl = fields.Integer(metadata={"description": "Seconds the push service keeps it for an offline device."})
    urgency = fields.String(validate=validate.OneOf(["very-low", "low", "normal", "high"]))
    topic = fields.String(metadata={"description": "Collapse key: a newer message with it replaces an undelivered one."})
    send_at = fields.String(metadata={"description": "ISO 8601 time to send at (default: now)."})


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
