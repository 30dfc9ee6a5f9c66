"""HTTP views of push: thin wrappers around PushService (client API under /v1/push, admin API per project)."""
from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from baas.openapi import USER_REQUIRED
from baas.context import current_principal, services
from baas.errors import Invalid
from baas.push.schemas import (DeliveryListQuerySchema, DeliveryListSchema, MessageCreatedSchema, MessageInSchema, MessageListQuerySchema,
                               MessageListSchema, MessageSchema, PublicKeySchema, SubscriptionInSchema,
                               SubscriptionSchema, TopicsChangeSchema, VapidKeysSchema)

blp = Blueprint("push", __name__, url_prefix="/v1/push",
                description="Web Push: subscriptions of signed-in users (client key, push:subscribe) and "
                            "messages (server key, push:send).")
admin_blp = Blueprint("admin-push", __name__, url_prefix="/admin/v1/projects/<project_id>/push",
                      description="A project's VAPID keys and push messages (platform admin token).")

_API_KEY = [{"apiKey": []}]
_USER = USER_REQUIRED


def _json_body(schema):
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _body():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object as the request body.")
    return body


def push():
    return services().extra["push"]


@blp.route("/vapid-public-key")
class PublicKey(MethodView):
    @blp.response(200, PublicKeySchema)
    @blp.doc(security=_API_KEY)
    @blp.doc(operationId="getVapidPublicKey")
    def get(self):
        """The key to pass to pushManager.subscribe({applicationServerKey})"""
        return push().public_key(current_principal())


@blp.route("/subscriptions")
class Subscriptions(MethodView):
    @blp.response(200, SubscriptionSchema(many=True))
    @blp.doc(security=_USER)
    @blp.doc(operationId="listPushSubscriptions")
    def get(self):
        """The calling user's subscriptions"""
        return push().list_subscriptions(current_principal())

    @blp.doc(requestBody=_json_body(SubscriptionInSchema), security=_USER)
    @blp.response(200, SubscriptionSchema, description="The endpoint was known; the subscription was updated.")
    @blp.alt_response(201, schema=SubscriptionSchema, description="A new subscription.")
    @blp.alt_response(400, description="A field is malformed (named in errors).")
    @blp.doc(operationId="subscribeToPush")
    def post(self):
        """Subscribe this device: the browser's PushSubscription.toJSON() plus optional topics"""
        subscription, created = push().subscribe(current_principal(), _body())
        return subscription, 201 if created else 200


@blp.route("/subscriptions/<subscription_id>")
class Subscription(MethodView):
    @blp.doc(requestBody=_json_body(TopicsChangeSchema), security=_USER)
    @blp.response(200, SubscriptionSchema)
    @blp.alt_response(400, description="Malformed topics.")
    @blp.doc(operationId="changePushSubscriptionTopics")
    def patch(self, subscription_id):
        """Change the topics of one of the user's subscriptions"""
        return push().change_topics(current_principal(), subscription_id, _body())

    @blp.response(204)
    @blp.doc(security=_USER)
    @blp.doc(operationId="unsubscribeFromPush")
    def delete(self, subscription_id):
        """Unsubscribe (the user's own subscription; a server key may remove any)"""
        push().unsubscribe(current_principal(), subscription_id)


def _send(project_id=None):
    message = push().send(current_principal(), _body(), project_id)
    return {"id": message["id"], "status": message["status"]}


@blp.route("/messages")
class Messages(MethodView):
    @blp.arguments(MessageListQuerySchema, location="query", error_status_code=400)
    @blp.response(200, MessageListSchema)
    @blp.doc(security=_API_KEY)
    @blp.doc(operationId="listPushMessages")
    def get(self, query):
        """Messages, newest first"""
        return push().list_messages(current_principal(), query["limit"], query["before"])

    @blp.doc(requestBody=_json_body(MessageInSchema), security=_API_KEY)
    @blp.response(202, MessageCreatedSchema, description="Queued; delivery runs in the background.")
    @blp.alt_response(400, description="Malformed audience or notification, or a payload over 4096 bytes.")
    @blp.doc(operationId="sendPushMessage")
    def post(self):
        """Send a notification to users, topics, a user filter or everyone, now or at send_at (server key)"""
        return _send()


@blp.route("/messages/<message_id>")
class Message(MethodView):
    @blp.response(200, MessageSchema)
    @blp.doc(security=_API_KEY)
    @blp.doc(operationId="getPushMessage")
    def get(self, message_id):
        """Status, counts and grouped failure reasons of a message"""
        return push().get_message(current_principal(), message_id)

    @blp.response(200, MessageSchema)
    @blp.doc(security=_API_KEY)
    @blp.doc(operationId="cancelPushMessage")
    def delete(self, message_id):
        """Cancel what is not sent yet"""
        return push().cancel_message(current_principal(), message_id)


@blp.route("/messages/<message_id>/deliveries")
class Deliveries(MethodView):
    @blp.arguments(DeliveryListQuerySchema, location="query")
    @blp.response(200, DeliveryListSchema)
    @blp.doc(security=_API_KEY)
    @blp.doc(operationId="listPushDeliveries")
    def get(self, query, message_id):
        """Per-subscription results of a message, a page at a time"""
        return push().deliveries(current_principal(), message_id, query["limit"], query["after"])


# --- admin API ------------------------------------------------------------------------------------------------

@admin_blp.route("/vapid")
class AdminVapid(MethodView):
    @admin_blp.response(200, VapidKeysSchema)
    @admin_blp.doc(operationId="adminGetVapidKeys")
    def get(self, project_id):
        """The project's VAPID public keys (private keys never leave the server)"""
        return push().vapid_keys(project_id)


@admin_blp.route("/vapid/rotate")
class AdminVapidRotate(MethodView):
    @admin_blp.response(200, VapidKeysSchema)
    @admin_blp.doc(operationId="adminRotateVapidKeys")
    def post(self, project_id):
        """New VAPID pair for new subscriptions; existing ones keep the pair they were made with"""
        return push().rotate_vapid_keys(project_id)


@admin_blp.route("/messages")
class AdminMessages(MethodView):
    @admin_blp.arguments(MessageListQuerySchema, location="query", error_status_code=400)
    @admin_blp.response(200, MessageListSchema)
    @admin_blp.doc(operationId="adminListPushMessages")
    def get(self, query, project_id):
        """A project's messages, newest first"""
        return push().list_messages(current_principal(), query["limit"], query["before"], project_id)

    @admin_blp.doc(requestBody=_json_body(MessageInSchema))
    @admin_blp.response(202, MessageCreatedSchema, description="Queued; delivery runs in the background.")
    @admin_blp.alt_response(400, description="Malformed audience or notification, or a payload over 4096 bytes.")
    @admin_blp.doc(operationId="adminSendPushMessage")
    def post(self, project_id):
        """Send a notification in a project"""
        return _send(project_id)


@admin_blp.route("/messages/<message_id>")
class AdminMessage(MethodView):
    @admin_blp.response(200, MessageSchema)
    @admin_blp.doc(operationId="adminGetPushMessage")
    def get(self, project_id, message_id):
        """Status and counts of a message"""
        return push().get_message(current_principal(), message_id, project_id)

    @admin_blp.response(200, MessageSchema)
    @admin_blp.doc(operationId="adminCancelPushMessage")
    def delete(self, project_id, message_id):
        """Cancel what is not sent yet"""
        return push().cancel_message(current_principal(), message_id, project_id)
