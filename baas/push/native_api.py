"""HTTP views of native push: devices of signed-in users, and a project's FCM/APNs credentials (admin)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from baas.context import current_principal
from baas.openapi import USER_REQUIRED
from baas.push.api import _body, _json_body, push
from baas.push.native_schemas import (ApnsCredentialsInSchema, PushCredentialsSchema, DeviceInSchema, DeviceSchema,
                                      FcmCredentialsInSchema)

devices_blp = Blueprint("push-devices", __name__, url_prefix="/v1/push/devices",
                        description="Native devices (FCM and APNs tokens) of signed-in users (client key, "
                                    "push:subscribe).")
credentials_blp = Blueprint("admin-push-credentials", __name__,
                            url_prefix="/admin/v1/projects/<project_id>/push/credentials",
                            description="A project's FCM and APNs credentials (platform admin token); private "
                                        "keys are stored sealed and never returned.")


@devices_blp.route("")
class Devices(MethodView):
    @devices_blp.response(200, DeviceSchema(many=True))
    @devices_blp.doc(security=USER_REQUIRED)
    def get(self):
        """The calling user's native devices"""
        return push().devices.list(current_principal())

    @devices_blp.doc(requestBody=_json_body(DeviceInSchema), security=USER_REQUIRED)
    @devices_blp.response(200, DeviceSchema, description="The (provider, token) was known; it now belongs to the "
                                                         "caller with these fields.")
    @devices_blp.alt_response(201, schema=DeviceSchema, description="A new device.")
    @devices_blp.alt_response(400, description="A field is malformed (named in errors).")
    def post(self):
        """Register this device's FCM or APNs token for the calling user (upserted by provider and token)"""
        device, created = push().devices.register(current_principal(), _body())
        return device, 201 if created else 200


@devices_blp.route("/<device_id>")
class Device(MethodView):
    @devices_blp.response(204)
    @devices_blp.doc(security=USER_REQUIRED)
    def delete(self, device_id):
        """Remove one of the user's devices (a server key may remove any)"""
        push().devices.delete(current_principal(), device_id)


@credentials_blp.route("")
class Credentials(MethodView):
    @credentials_blp.response(200, PushCredentialsSchema(many=True))
    def get(self, project_id):
        """The configured providers, without their private keys"""
        return push().credentials.describe_all(project_id)


@credentials_blp.route("/fcm")
class FcmCredentials(MethodView):
    @credentials_blp.doc(requestBody=_json_body(FcmCredentialsInSchema))
    @credentials_blp.response(200, PushCredentialsSchema)
    @credentials_blp.alt_response(400, description="The service account or a URL is malformed (named in errors).")
    def put(self, project_id):
        """Set the Firebase service account that sends to FCM"""
        return push().credentials.save(project_id, "fcm", _body())

    @credentials_blp.response(204)
    def delete(self, project_id):
        """Remove the FCM credentials (FCM deliveries then fail with a reason)"""
        push().credentials.delete(project_id, "fcm")


@credentials_blp.route("/apns")
class ApnsCredentials(MethodView):
    @credentials_blp.doc(requestBody=_json_body(ApnsCredentialsInSchema))
    @credentials_blp.response(200, PushCredentialsSchema)
    @credentials_blp.alt_response(400, description="The key or an id is malformed (named in errors).")
    def put(self, project_id):
        """Set the APNs token-signing key (.p8), key id, team id and bundle id"""
        return push().credentials.save(project_id, "apns", _body())

    @credentials_blp.response(204)
    def delete(self, project_id):
        """Remove the APNs credentials (APNs deliveries then fail with a reason)"""
        push().credentials.delete(project_id, "apns")
