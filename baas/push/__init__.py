"""Push: Web Push (per-project VAPID keys, subscriptions), native devices on FCM and APNs (per-project
credentials), and messages delivered to all of them in the background by `baas worker`."""
from baas.plugins.hookspecs import hookimpl


def _build(svc):
    from baas.push.apns import ApnsProvider
    from baas.push.credentials import NativeCredentials
    from baas.push.devices import Devices
    from baas.push.fcm import FcmProvider
    from baas.push.providers import WebPushProvider
    from baas.push.service import PushService
    from baas.push.vapid import VapidKeys, VapidTokens

    config = svc.config
    push = config["push"]
    keys = VapidKeys(svc.mongo, svc.sealer, legacy_secret=config["jwt"]["secret"])
    service = PushService(svc.mongo, svc.projects, svc.hooks, keys, config)
    service.devices = Devices(service)
    service.credentials = NativeCredentials(svc.mongo, svc.projects, svc.sealer, push["allow_http_hosts"])
    timeout = push["request_timeout_seconds"]
    service.providers = {
        "webpush": WebPushProvider(VapidTokens(keys, push["vapid_subject"]), push["senders"], timeout,
                                   push["allow_http_hosts"]),
        "fcm": FcmProvider(service.credentials, min(push["senders"], push["sender_threads"]), timeout,
                           push["native_ca_file"], push["allow_http_hosts"]),
        "apns": ApnsProvider(service.credentials, timeout, push["native_ca_file"], push["allow_http_hosts"]),
    }
    return service


def init_app(app, api) -> None:
    from baas.push import api as push_api
    from baas.push import native_api

    svc = app.extensions["baas"]
    service = svc.extra["push"] = _build(svc)
    svc.hooks.register(_ProjectListener(service), name="baas.push")
    # Not an after-hook (isolated: a failure there is only logged): the project's push data goes with it.
    svc.projects.on_deleting.append(service.forget_project)
    svc.projects.on_deleting.append(service.credentials.forget)
    if svc.auth is not None:
        svc.auth.on_user_deleted.append(service.delete_user_subscriptions)
    api.register_blueprint(push_api.blp)
    api.register_blueprint(push_api.admin_blp)
    api.register_blueprint(native_api.devices_blp)
    api.register_blueprint(native_api.credentials_blp)
    if svc.transfer is not None:  # project export/import carries the VAPID pairs (baas.push.transfer)
        from baas.push.transfer import VapidKeysPart

        svc.transfer.parts.append(VapidKeysPart(service.keys))


def background_runners(svc) -> list:
    from baas.push.delivery import PushDelivery

    service = svc.extra.get("push")
    if service is None:
        return []
    return [PushDelivery(service, service.providers, svc.config, metrics=svc.metrics)]


class _ProjectListener:
    """A new project gets its VAPID pair at once."""

    def __init__(self, service):
        self.service = service

    @hookimpl
    def baas_project_created(self, project):
        self.service.keys.ensure(project["_id"])
