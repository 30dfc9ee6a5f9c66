"""Request and response shapes of native push: devices (client API) and FCM/APNs credentials (admin API).

Bodies are validated by the services (baas.push.devices, baas.push.credentials), which answer 400 naming the field;
these schemas are what the OpenAPI document shows.
"""
from marshmallow import Schema, fields, validate

from baas.schemas import UtcDateTime


class DeviceInSchema(Schema):
    provider = fields.String(required=True, validate=validate.OneOf(["fcm", "apns"]))
    token = fields.String(required=True, validate=validate.Length(min=16, max=1024), metadata={
        "description": "FCM: the registration token from the Firebase SDK. APNs: the device token in hex "
                       "(64 to 200 hex digits)."})
    platform = fields.String(validate=validate.OneOf(["android", "ios"]),
                             metadata={"description": "Default: android for fcm, ios for apns."})
    topics = fields.List(fields.String(), metadata={"description": "Up to 50 topic names."})
    app_version = fields.String(validate=validate.Length(min=1, max=64))
    locale = fields.String(validate=validate.Length(min=2, max=35))


class DeviceSchema(Schema):
    id = fields.String()
    provider = fields.String()
    token = fields.String()
    platform = fields.String()
    topics = fields.List(fields.String())
    app_version = fields.String(allow_none=True)
    locale = fields.String(allow_none=True)
    user_id = fields.String()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class FcmCredentialsInSchema(Schema):
    service_account = fields.Dict(required=True, metadata={
        "description": "The service-account JSON from the Firebase console (Project settings > Service accounts)."})
    base_url = fields.String(metadata={"description": "Default https://fcm.googleapis.com."})
    token_url = fields.String(metadata={"description": "Default: the JSON's token_uri, else Google's."})


class ApnsCredentialsInSchema(Schema):
    key = fields.String(required=True, metadata={"description": "PEM text of the .p8 token-signing key."})
    key_id = fields.String(required=True, validate=validate.Length(equal=10))
    team_id = fields.String(required=True, validate=validate.Length(equal=10))
    bundle_id = fields.String(required=True, metadata={"description": "The app's bundle id (the apns-topic)."})
    environment = fields.String(validate=validate.OneOf(["production", "sandbox"]),
                                metadata={"description": "sandbox for development builds (default production)."})
    base_url = fields.String(metadata={"description": "Default: Apple's host of the environment."})


class PushCredentialsSchema(Schema):
    """The public part of a provider's credentials; the private key is never returned."""
    provider = fields.String()
    updated_at = UtcDateTime()
    base_url = fields.String()
    firebase_project = fields.String(metadata={"description": "fcm"})
    client_email = fields.String(metadata={"description": "fcm"})
    private_key_id = fields.String(allow_none=True, metadata={"description": "fcm"})
    token_url = fields.String(metadata={"description": "fcm"})
    key_id = fields.String(metadata={"description": "apns"})
    team_id = fields.String(metadata={"description": "apns"})
    bundle_id = fields.String(metadata={"description": "apns"})
    environment = fields.String(metadata={"description": "apns"})


class ApnsOptionsSchema(Schema):
    badge = fields.Integer(validate=validate.Range(min=0, max=99_999))
    sound = fields.String(validate=validate.Length(min=1, max=64))
    thread_id = fields.String(validate=validate.Length(min=1, max=64))
    push_type = fields.String(validate=validate.OneOf(["alert", "background"]))
    mutable_content = fields.Boolean()


class FcmOptionsSchema(Schema):
    channel_id = fields.String(validate=validate.Length(min=1, max=64))
    sound = fields.String(validate=validate.Length(min=1, max=64))
    priority = fields.String(validate=validate.OneOf(["normal", "high"]))
