"""Native push end to end: devices, FCM and APNs credentials, delivery through the loopback emulators."""
import socket
import time

import pytest

from baas.testing import sign_up_user, wait_until
from push_receiver import PUSH_CONFIG
from test_push import send, status, subscribe


@pytest.fixture
def app(make_app, apns):
    # A short request timeout: a stream the closing-connection test leaves unanswered fails (and is retried) fast.
    return make_app({**PUSH_CONFIG, "push.native_ca_file": apns.ca_file, "push.request_timeout_seconds": 3})


@pytest.fixture
def native(project, admin, fcm, apns):
    """The project with fresh FCM and APNs credentials that the emulators trust."""
    account = fcm.service_account()
    key = apns.signing_key()
    assert admin.put(f"/admin/v1/projects/{project.id}/push/credentials/fcm",
                     json={"service_account": account, "base_url": fcm.origin}).status_code == 200
    saved = admin.put(f"/admin/v1/projects/{project.id}/push/credentials/apns", json={**key, "base_url": apns.origin})
    assert saved.status_code == 200, saved.get_json()
    project.fcm_account, project.apns_key = account, key
    return project


def register(user, provider, token, **extra):
    response = user.post("/v1/push/devices", json={"provider": provider, "token": token, **extra})
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def fcm_token(n: int = 0) -> str:
    return f"fcm-device-{n}-{time.monotonic_ns()}:APA91b" + "x" * 120


def test_one_message_reaches_a_browser_an_android_phone_and_an_iphone_once_each(native, receiver, fcm, apns,
                                                                                delivery):
    user = sign_up_user(native)
    browser = receiver.device()
    subscribe(user, browser)
    android, iphone = fcm_token(), apns.device_token()
    register(user, "fcm", android, platform="android", topics=["news"])
    register(user, "apns", iphone, app_version="2.1.0", locale="en-GB")
    message_id = send(native, {
        "audience": {"users": [user.user_id]}, "ttl": 600, "urgency": "high", "topic": "scores",
        "notification": {"title": "Goal", "body": "2-1", "url": "/match/7", "data": {"match": 7, "side": "home"}},
        "apns": {"badge": 3, "sound": "default", "thread_id": "match-7"}, "fcm": {"channel_id": "scores"}})
    delivery.drain()

    web, = receiver.for_device(browser)
    assert web.payload == {"title": "Goal", "body": "2-1", "url": "/match/7", "data": {"match": 7, "side": "home"},
                           "message_id": message_id}

    got, = fcm.for_token(android)
    assert got.headers["Authorization"].startswith("Bearer ya29.")
    body = got.body
    assert body["notification"] == {"title": "Goal", "body": "2-1"}
    assert body["data"] == {"match": "7", "side": "home", "url": "/match/7", "message_id": message_id}
    assert body["android"] == {"priority": "HIGH", "ttl": "600s", "collapse_key": "scores",
                               "notification": {"channel_id": "scores"}}
    assert body["apns"]["headers"]["apns-priority"] == "10" and body["apns"]["payload"]["aps"]["badge"] == 3

    pushed, = apns.for_token(iphone)
    assert pushed.body == {"aps": {"alert": {"title": "Goal", "body": "2-1"}, "badge": 3, "sound": "default",
                                   "thread-id": "match-7"},
                           "match": 7, "side": "home", "url": "/match/7", "message_id": message_id}
    headers = pushed.headers
    assert headers["apns-topic"] == native.apns_key["bundle_id"] and headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10" and headers["apns-collapse-id"] == "scores"
    assert abs(int(headers["apns-expiration"]) - (time.time() + 600)) < 30
    assert apns.http_versions == {"2"}

    shown = status(native, message_id)
    assert shown["counts"] == {"total": 3, "sent": 3, "failed": 0, "removed": 0, "unconfirmed": 0, "pending": 0,
                              "cancelled": 0}
    assert shown["apns"]["badge"] == 3 and shown["providers"] is None


def test_devices_upsert_by_token_move_between_users_and_stay_apart_from_subscriptions(native, apns, receiver):
    alice, bob = sign_up_user(native), sign_up_user(native)
    token = apns.device_token()
    first = alice.post("/v1/push/devices", json={"provider": "apns", "token": token.upper(), "topics": ["a"]})
    assert first.status_code == 201 and first.get_json()["token"] == token  # hex is kept in lower case
    again = alice.post("/v1/push/devices", json={"provider": "apns", "token": token})
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["topics"] == ["a"]                                   # a refresh keeps the topics
    subscribe(alice, receiver.device())
    assert [d["id"] for d in alice.get("/v1/push/devices").get_json()] == [first.get_json()["id"]]
    assert all(s["provider"] == "webpush" for s in alice.get("/v1/push/subscriptions").get_json())
    device_id = first.get_json()["id"]
    assert alice.delete(f"/v1/push/subscriptions/{device_id}").status_code == 404  # not a browser subscription

    moved = bob.post("/v1/push/devices", json={"provider": "apns", "token": token})
    assert moved.status_code == 200 and moved.get_json()["user_id"] == bob.user_id
    assert moved.get_json()["topics"] == []                                      # not alice's topics
    assert alice.get("/v1/push/devices").get_json() == []
    assert alice.delete(f"/v1/push/devices/{device_id}").status_code == 404       # bob's now
    same_token_other_provider = register(bob, "fcm", "f" * 64)
    assert same_token_other_provider["id"] != device_id
    assert bob.delete(f"/v1/push/devices/{device_id}").status_code == 204
    assert [d["provider"] for d in bob.get("/v1/push/devices").get_json()] == ["fcm"]


@pytest.mark.parametrize("change, field", [
    ({"provider": "gcm"}, "provider"),
    ({"token": "abc"}, "token"),                                  # apns: too short
    ({"token": "g" * 64}, "token"),                               # apns: not hex
    ({"token": "a" * 65}, "token"),                               # apns: odd number of digits
    ({"token": "a" * 202}, "token"),                              # apns: over 100 bytes
    ({"provider": "fcm", "token": "has spaces in it, which FCM never issues"}, "token"),
    ({"provider": "fcm", "token": "x" * 1025}, "token"),
    ({"provider": "fcm", "token": 5}, "token"),
    ({"platform": "android"}, "platform"),                        # apns is iOS only
    ({"platform": "web"}, "platform"),
    ({"topics": ["bad topic"]}, "topics"),
    ({"locale": "en US!"}, "locale"),
    ({"app_version": "x" * 65}, "app_version"),
    ({"user_id": "someone-else"}, "user_id"),
])
def test_malformed_devices_get_400_naming_the_field(native, apns, change, field):
    user = sign_up_user(native)
    response = user.post("/v1/push/devices", json={"provider": "apns", "token": apns.device_token(), **change})
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]
    assert user.get("/v1/push/devices").get_json() == []


def test_registering_needs_a_signed_in_user_and_a_deleted_user_takes_its_devices(native, apns):
    assert native.client.post("/v1/push/devices", json={"provider": "apns", "token": apns.device_token()}) \
        .status_code == 401
    user = sign_up_user(native)
    register(user, "apns", apns.device_token())
    register(user, "fcm", fcm_token())
    assert native.server.delete(f"/v1/users/{user.user_id}").status_code == 204
    service = native.server.client.application.extensions["baas"].extra["push"]
    assert service.subscriptions(native.id).count_documents({"user_id": user.user_id}) == 0


def test_providers_limit_a_message_and_topics_cover_every_provider(native, receiver, fcm, apns, delivery):
    user = sign_up_user(native)
    browser, android, iphone = receiver.device(), fcm_token(), apns.device_token()
    subscribe(user, browser, topics=["deals"])
    register(user, "fcm", android, topics=["deals"])
    register(user, "apns", iphone, topics=["deals"])
    only_iphones = send(native, {"audience": {"topics": ["deals"]}, "providers": ["apns"],
                                 "notification": {"title": "iOS only"}})
    delivery.drain()
    assert len(apns.for_token(iphone)) == 1 and fcm.for_token(android) == [] and receiver.for_device(browser) == []
    assert status(native, only_iphones)["counts"]["total"] == 1
    everyone = send(native, {"audience": {"topics": ["deals"]}, "notification": {"title": "All"}})
    delivery.drain()
    assert status(native, everyone)["counts"]["sent"] == 3
    bad = native.server.post("/v1/push/messages", json={"audience": {"all": True}, "providers": ["sms"],
                                                        "notification": {"title": "x"}})
    assert bad.status_code == 400 and "providers" in bad.get_json()["errors"]


def test_apns_gone_devices_are_removed_and_throttled_or_failing_ones_retried(native, apns, delivery):
    user = sign_up_user(native)
    gone, bad, throttled, flaky, fine = (apns.device_token() for _ in range(5))
    for token in (gone, bad, throttled, flaky, fine):
        register(user, "apns", token)
    apns.answer(gone, (410, "Unregistered", {}))
    apns.answer(bad, (400, "BadDeviceToken", {}))
    apns.answer(throttled, (429, "TooManyRequests", {"retry-after": "1"}))
    apns.answer(flaky, (500, "InternalServerError", {}), (503, "ServiceUnavailable", {}))
    message_id = send(native, {"audience": {"users": [user.user_id]}, "notification": {"title": "x"}})
    wait_until(lambda: delivery.run_once() is not None and status(native, message_id)["status"] == "done",
               timeout=20, message="retries finished")
    shown = status(native, message_id)
    assert shown["counts"] == {"total": 5, "sent": 3, "failed": 0, "removed": 2, "unconfirmed": 0, "pending": 0,
                              "cancelled": 0}
    assert apns.attempts[throttled] == 2 and apns.attempts[flaky] == 3
    assert len(apns.for_token(throttled)) == 1 and len(apns.for_token(flaky)) == 1
    assert {d["token"] for d in user.get("/v1/push/devices").get_json()} == {throttled, flaky, fine}


def test_fcm_errors_remove_retry_or_fail_with_the_reason(native, fcm, delivery):
    user = sign_up_user(native)
    gone, invalid, quota, down, mismatch, fine = (fcm_token(n) for n in range(6))
    for token in (gone, invalid, quota, down, mismatch, fine):
        register(user, "fcm", token)
    fcm.answer(gone, (404, "UNREGISTERED", {}))
    fcm.answer(invalid, (400, "INVALID_ARGUMENT", {}))
    fcm.answer(quota, (429, "QUOTA_EXCEEDED", {"Retry-After": "1"}))
    fcm.answer(down, (503, "UNAVAILABLE", {}), (500, "INTERNAL", {}))
    fcm.answer(mismatch, (403, "SENDER_ID_MISMATCH", {}))
    message_id = send(native, {"audience": {"users": [user.user_id]}, "notification": {"body": "x"}})
    wait_until(lambda: delivery.run_once() is not None and status(native, message_id)["status"] == "done",
               timeout=20, message="retries finished")
    shown = status(native, message_id)
    assert shown["counts"] == {"total": 6, "sent": 3, "failed": 1, "removed": 2, "unconfirmed": 0, "pending": 0,
                              "cancelled": 0}
    assert shown["failures"][0]["reason"].startswith("403 SENDER_ID_MISMATCH")
    assert fcm.attempts[quota] == 2 and fcm.attempts[down] == 3
    assert {d["token"] for d in user.get("/v1/push/devices").get_json()} == {quota, down, mismatch, fine}


def test_fcm_over_https_trusts_the_configured_ca_and_nothing_else(project, admin, apns, delivery, tmp_path):
    from native_emulators import FcmEmulator, make_test_ca

    trusted = FcmEmulator(tls=apns.cert_files)                       # signed by push.native_ca_file's CA
    stranger = FcmEmulator(tls=make_test_ca(tmp_path / "other")[1:])  # signed by a CA nobody configured
    try:
        user = sign_up_user(project)
        for emulator in (trusted, stranger):
            assert emulator.origin.startswith("https://")
            assert admin.put(f"/admin/v1/projects/{project.id}/push/credentials/fcm",
                             json={"service_account": emulator.service_account(),
                                   "base_url": emulator.origin}).status_code == 200
            token = fcm_token()
            register(user, "fcm", token)
            message_id = send(project, {"audience": {"users": [user.user_id]}, "providers": ["fcm"],
                                        "notification": {"title": "tls"}})
            delivery.drain()
            if emulator is trusted:
                got, = emulator.for_token(token)
                assert got.body["notification"] == {"title": "tls"} and emulator.token_requests == 1
                assert status(project, message_id)["counts"]["sent"] == 1
            else:
                # the certificate does not verify: no token request reaches the server, the delivery is retried
                assert emulator.token_requests == 0 and emulator.received == []
                assert status(project, message_id)["counts"]["sent"] == 0
    finally:
        trusted.close()
        stranger.close()


def test_access_tokens_and_provider_jwts_are_reused_over_one_http2_connection(native, fcm, apns, delivery):
    user = sign_up_user(native)
    androids, iphones = [fcm_token(n) for n in range(6)], [apns.device_token() for _ in range(6)]
    for n in range(6):
        register(user, "fcm", androids[n])
        register(user, "apns", iphones[n])
    tokens_before, connections_before = fcm.token_requests, set(apns.connections)
    for title in ("one", "two"):
        send(native, {"audience": {"users": [user.user_id]}, "notification": {"title": title}})
        delivery.drain()
    assert sum(len(fcm.for_token(t)) for t in androids) == 12 and sum(len(apns.for_token(t)) for t in iphones) == 12
    assert fcm.token_requests - tokens_before == 1
    assert len(apns.jwts_of(native.apns_key["key_id"])) == 1
    assert len(apns.connections - connections_before) == 1

    fcm.tokens.clear()  # Google revoked the access token early: a 401, then a new token on the retry
    message_id = send(native, {"audience": {"users": [user.user_id]}, "providers": ["fcm"],
                               "notification": {"title": "three"}})
    wait_until(lambda: delivery.run_once() is not None and status(native, message_id)["status"] == "done",
               timeout=20, message="delivered after the token refresh")
    assert status(native, message_id)["counts"]["sent"] == 6
    assert fcm.token_requests - tokens_before == 2


def test_bad_credentials_fail_the_message_with_a_clear_reason(project, admin, fcm, apns, delivery):
    account = fcm.service_account()
    fcm.accounts.pop(account["client_email"])           # Google no longer knows this key
    key = apns.signing_key()
    wrong_team = {**key, "team_id": "WRONGTEAM0", "base_url": apns.origin}
    assert admin.put(f"/admin/v1/projects/{project.id}/push/credentials/fcm",
                     json={"service_account": account}).status_code == 200
    assert admin.put(f"/admin/v1/projects/{project.id}/push/credentials/apns", json=wrong_team).status_code == 200
    user = sign_up_user(project)
    for n in range(3):
        register(user, "fcm", fcm_token(n))
        register(user, "apns", apns.device_token())
    tokens_before = fcm.token_requests
    message_id = send(project, {"audience": {"users": [user.user_id]}, "notification": {"title": "x"}})
    delivery.drain()
    shown = status(project, message_id)
    assert shown["counts"]["failed"] == 6 and shown["counts"]["sent"] == 0
    reasons = {f["reason"]: f["count"] for f in shown["failures"]}
    fcm_reason, = (r for r in reasons if "FCM" in r)
    apns_reason, = (r for r in reasons if "APNs" in r)
    assert reasons[fcm_reason] == 3 and "refused by the token endpoint" in fcm_reason and "invalid_grant" in fcm_reason
    assert reasons[apns_reason] == 3 and "InvalidProviderToken" in apns_reason and "team id" in apns_reason
    assert fcm.token_requests - tokens_before == 1       # refused credentials are not tried per device
    assert len(user.get("/v1/push/devices").get_json()) == 6  # nothing removed for a credentials problem


def test_devices_of_a_project_without_credentials_fail_with_the_reason(project, apns, delivery):
    user = sign_up_user(project)
    register(user, "apns", apns.device_token())
    message_id = send(project, {"audience": {"all": True}, "notification": {"title": "x"}})
    delivery.drain()
    assert status(project, message_id)["failures"] == [
        {"reason": "APNs is not configured for this project (`baas push credentials set PROJECT apns ...`)",
         "count": 1}]


def test_native_payload_limits_are_400_naming_the_size(project):
    big = {"audience": {"all": True}, "providers": ["apns"], "notification": {"title": "x", "data": {"z": "w" * 4100}}}
    response = project.server.post("/v1/push/messages", json=big)
    assert response.status_code == 400
    message = response.get_json()["message"]
    assert "APNs payload would be 41" in message and "4096" in message
    fcm_only = project.server.post("/v1/push/messages", json={**big, "providers": ["fcm"]})
    assert fcm_only.status_code == 400 and "FCM payload would be" in fcm_only.get_json()["message"]
    reserved = project.server.post("/v1/push/messages", json={"audience": {"all": True},
                                                              "notification": {"data": {"aps": {}}}})
    assert reserved.status_code == 400 and "notification.data" in reserved.get_json()["errors"]
    for options, field in (({"apns": {"badge": -1}}, "apns.badge"), ({"apns": {"push_type": "voip"}}, "apns.push_type"),
                           ({"apns": {"alert": "x"}}, "apns.alert"), ({"fcm": {"priority": "max"}}, "fcm.priority"),
                           ({"fcm": "x"}, "fcm")):
        response = project.server.post("/v1/push/messages", json={"audience": {"all": True},
                                                                  "notification": {"title": "x"}, **options})
        assert response.status_code == 400 and field in response.get_json()["errors"], options


def test_background_pushes_wake_the_app_without_an_alert(native, apns, delivery):
    user = sign_up_user(native)
    iphone = apns.device_token()
    register(user, "apns", iphone)
    send(native, {"audience": {"users": [user.user_id]}, "urgency": "low", "ttl": 0,
                  "notification": {"data": {"sync": "inbox"}}})
    delivery.drain()
    pushed, = apns.for_token(iphone)
    assert pushed.body["aps"] == {"content-available": 1} and pushed.body["sync"] == "inbox"
    assert pushed.headers["apns-push-type"] == "background" and pushed.headers["apns-priority"] == "5"
    assert pushed.headers["apns-expiration"] == "0"


def test_credentials_admin_api_stores_them_sealed_and_never_shows_the_key(project, admin, fcm, apns):
    path = f"/admin/v1/projects/{project.id}/push/credentials"
    account = fcm.service_account("acme-prod")
    saved = admin.put(f"{path}/fcm", json={"service_account": account})
    assert saved.status_code == 200
    assert saved.get_json()["client_email"] == account["client_email"]
    assert saved.get_json()["token_url"] == account["token_uri"]
    assert saved.get_json()["base_url"] == "https://fcm.googleapis.com"
    key = apns.signing_key("com.acme.app")
    assert admin.put(f"{path}/apns", json={**key, "environment": "sandbox"}).status_code == 200
    listed = admin.get(path).get_json()
    assert [c["provider"] for c in listed] == ["apns", "fcm"]
    assert listed[0]["base_url"] == "https://api.sandbox.push.apple.com" and listed[0]["bundle_id"] == "com.acme.app"
    assert "PRIVATE KEY" not in str(listed) and "sealed" not in str(listed)
    stored = project.server.client.application.extensions["baas"].mongo.platform["push_credentials"]
    raw = str(list(stored.find({"project_id": project.id})))
    assert "PRIVATE KEY" not in raw and account["private_key"][40:80] not in raw

    assert project.server.get(path).status_code == 401                # the admin token only
    for body, field in (({"service_account": {**account, "private_key": "nope"}}, "service_account.private_key"),
                        ({"service_account": {**account, "type": "user"}}, "service_account.type"),
                        ({"service_account": account, "base_url": "http://10.0.0.1"}, "base_url"),
                        ({"service_account": account, "token_url": "https://u:p@x.example"}, "token_url")):
        response = admin.put(f"{path}/fcm", json=body)
        assert response.status_code == 400 and field in response.get_json()["errors"], body
    rsa_as_p8 = admin.put(f"{path}/apns", json={**key, "key": account["private_key"]})
    assert rsa_as_p8.status_code == 400 and "key" in rsa_as_p8.get_json()["errors"]
    assert admin.put(f"{path}/apns", json={**key, "key_id": "short"}).status_code == 400
    assert admin.put(f"/admin/v1/projects/no-such-project/push/credentials/apns", json=key).status_code == 404

    assert admin.delete(f"{path}/fcm").status_code == 204
    assert admin.delete(f"{path}/fcm").status_code == 404
    assert [c["provider"] for c in admin.get(path).get_json()] == ["apns"]


def test_openapi_declares_the_native_push_contract(client):
    spec = client.get("/openapi.json").get_json()
    paths = spec["paths"]
    register_op = paths["/v1/push/devices"]["post"]
    assert {"200", "201", "400", "401"} <= set(register_op["responses"])
    assert register_op["security"] == [{"apiKey": [], "userToken": []}]
    assert "/v1/push/devices/{device_id}" in paths
    fcm_op = paths["/admin/v1/projects/{project_id}/push/credentials/fcm"]["put"]
    assert {"200", "400", "401", "404"} <= set(fcm_op["responses"])
    assert fcm_op["security"] == [{"adminToken": []}]
    schemas = spec["components"]["schemas"]
    assert "private_key" not in schemas["PushCredentials"]["properties"] and "key" not in schemas["PushCredentials"]["properties"]
    assert {"providers", "apns", "fcm"} <= set(schemas["MessageIn"]["properties"])
    from openapi_spec_validator import validate

    validate(spec)


def test_apns_deliveries_survive_the_connection_closing_under_them(project, admin, delivery, tmp_path):
    from native_emulators import ApnsEmulator

    closing = ApnsEmulator(tmp_path / "ca", requests_per_connection=4)   # GOAWAY after every 4 streams
    try:
        key = closing.signing_key()
        app = project.server.client.application
        provider = app.extensions["baas"].extra["push"].providers["apns"]
        provider.ssl_context.load_verify_locations(closing.ca_file)        # trust this emulator's CA too
        assert admin.put(f"/admin/v1/projects/{project.id}/push/credentials/apns",
                         json={**key, "base_url": closing.origin}).status_code == 200
        user = sign_up_user(project)
        tokens = [closing.device_token() for _ in range(10)]
        for token in tokens:
            register(user, "apns", token)
        message_id = send(project, {"audience": {"users": [user.user_id]}, "notification": {"title": "x"}})
        wait_until(lambda: delivery.run_once() is not None and status(project, message_id)["status"] == "done",
                   timeout=60, message="delivered over new connections")
        # hypercorn drops the connection right after its 4th answer, so answers can be lost in flight and those
        # devices are retried in the same order (a real APNs finishes open streams after GOAWAY): how many
        # arrive varies, but deliveries go on over new connections and every failure is a retried connection
        # error, never a removed device.
        shown = status(project, message_id)
        assert shown["counts"]["sent"] >= 4 and shown["counts"]["pending"] == 0, shown["failures"]
        assert shown["counts"]["removed"] == 0
        assert all("connection" in f["reason"] and "gave up after" in f["reason"] for f in shown["failures"])
        assert len(closing.connections) >= 2
        assert sum(bool(closing.for_token(token)) for token in tokens) >= shown["counts"]["sent"]
    finally:
        closing.close()


def test_an_unanswered_apns_stream_times_out_alone_and_frees_its_slot(apns):
    import asyncio

    from baas.push.h2client import ConnectionLost, H2Origin, client_ssl_context

    key = apns.signing_key()
    hanging, fine = apns.device_token(), apns.device_token()
    apns.answer(hanging, (None, None, {}))

    async def run():
        import jwt
        from cryptography.hazmat.primitives import serialization

        private = serialization.load_pem_private_key(key["key"].encode(), password=None)
        token = jwt.encode({"iss": key["team_id"], "iat": int(time.time())}, private, algorithm="ES256",
                           headers={"kid": key["key_id"]})
        origin = H2Origin(apns.origin, client_ssl_context(apns.ca_file), timeout=1.0)
        headers = {"authorization": f"bearer {token}", "apns-topic": key["bundle_id"], "apns-push-type": "alert"}
        try:
            first = await origin.post_many([f"/3/device/{hanging}", f"/3/device/{fine}"], headers, b'{"aps":{}}')
            protocol = origin._protocol
            open_after = len(protocol.streams)
            again = await origin.post(f"/3/device/{fine}", headers, b'{"aps":{}}')
            return first, open_after, again, origin.connections_opened
        finally:
            origin.close()

    (lost, answered), open_after, again, opened = asyncio.run(run())
    assert isinstance(lost, ConnectionLost) and "no answer within" in str(lost)
    assert answered.status == 200 and again.status == 200
    assert open_after == 0          # the timed-out stream was reset, not left holding a slot
    assert opened == 1              # and the connection carried on
    assert apns.attempts[hanging] == 1 and apns.attempts[fine] == 2


def test_a_native_base_url_does_not_open_its_host_to_web_push_endpoints(native, apns):
    # The admin pointed APNs at a loopback gateway; a Web Push endpoint on that gateway, by a name that resolves
    # to this network, is still refused by the SSRF check (only push.allow_http_hosts exempts a host).
    user = sign_up_user(native)
    port = apns.origin.rsplit(":", 1)[1]
    body = {"endpoint": f"https://{socket.gethostname()}:{port}/3/device/{'a' * 64}",
            "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22}}
    response = user.post("/v1/push/subscriptions", json=body)
    assert response.status_code == 400
    assert "not a local address" in response.get_json()["errors"]["endpoint"][0]


def test_a_short_lived_fcm_access_token_is_reused_until_shortly_before_it_expires(native, fcm, delivery):
    # A token endpoint (an on-premise gateway) that issues 2-minute tokens: under the usual 5-minute margin, yet
    # it must serve many deliveries, not one token request each.
    user = sign_up_user(native)
    androids = [fcm_token(n) for n in range(8)]
    for token in androids:
        register(user, "fcm", token)
    fcm.token_seconds = 120
    try:
        tokens_before = fcm.token_requests
        for title in ("one", "two", "three"):
            message_id = send(native, {"audience": {"users": [user.user_id]}, "providers": ["fcm"],
                                       "notification": {"title": title}})
            delivery.drain()
            assert status(native, message_id)["counts"]["sent"] == 8
    finally:
        fcm.token_seconds = 3600
    assert sum(len(fcm.for_token(t)) for t in androids) == 24
    assert fcm.token_requests - tokens_before == 1
    provider = native.server.client.application.extensions["baas"].extra["push"].providers["fcm"]
    (_, renew_at), = provider._tokens.values()
    assert 55 < renew_at - time.time() <= 60      # renewed at half its life, not five minutes before its end


@pytest.mark.parametrize("retry_after", ["30", "date"])
def test_fcm_retry_after_sets_when_the_delivery_is_tried_again(native, fcm, delivery, retry_after):
    import email.utils

    delivery.config["retry_max_seconds"] = 120      # the backoff alone would retry within 0.1 s
    user = sign_up_user(native)
    token = fcm_token()
    register(user, "fcm", token)
    header = "30" if retry_after == "30" else email.utils.formatdate(time.time() + 30, usegmt=True)
    fcm.answer(token, (429, "QUOTA_EXCEEDED", {"Retry-After": header}))
    message_id = send(native, {"audience": {"users": [user.user_id]}, "notification": {"title": "later"}})
    answered_at = time.time()
    queue = delivery.queue
    wait_until(lambda: delivery.run_once() is not None and queue.find_one({"message_id": message_id, "attempt": 2}),
               timeout=20, message="the retry queued")
    retry = queue.find_one({"message_id": message_id, "attempt": 2})
    assert 28 <= retry["due"] - answered_at <= 32 + (time.time() - answered_at)
    delivery.run_once()
    assert fcm.attempts[token] == 1                 # not due yet: nothing sent early
    queue.update_one({"_id": retry["_id"]}, {"$set": {"due": time.time()}})   # let the 30 s pass
    delivery.drain()
    assert fcm.attempts[token] == 2 and len(fcm.for_token(token)) == 1
    assert status(native, message_id)["counts"]["sent"] == 1


def _stored_credentials(app):
    return app.extensions["baas"].mongo.platform["push_credentials"]


@pytest.mark.parametrize("damage", ["unknown key", "altered", "not a key"])
def test_unreadable_credentials_fail_deliveries_with_the_reason_and_one_warning(native, admin, fcm, apns, delivery,
                                                                                damage, caplog):
    from baas.push.credentials import _aad
    from baas.sealing import Sealer

    app = native.server.client.application
    svc = app.extensions["baas"]
    stored = _stored_credentials(app)
    for doc in stored.find({"project_id": native.id}):
        aad = _aad(doc["project_id"], doc["provider"], doc["revision"])
        if damage == "unknown key":       # sealed by a process with another secrets.encryption_key
            sealed = Sealer("a key this process never had").seal(b"whatever", aad)
        elif damage == "altered":
            sealed = doc["sealed"][:-6] + ("AAAAAA" if not doc["sealed"].endswith("AAAAAA") else "BBBBBB")
        else:
            sealed = svc.sealer.seal(b"-----BEGIN PRIVATE KEY-----\nnot a key\n", aad)
        stored.update_one({"_id": doc["_id"]}, {"$set": {"sealed": sealed}})
    svc.extra["push"].credentials._cache.clear()
    user = sign_up_user(native)
    for n in range(5):
        register(user, "fcm", fcm_token(n))
        register(user, "apns", apns.device_token())
    tokens_before = fcm.token_requests
    caplog.set_level("WARNING", logger="baas.push")
    message_id = send(native, {"audience": {"users": [user.user_id]}, "notification": {"title": "x"}})
    delivery.drain()
    shown = status(native, message_id)
    assert shown["status"] == "done" and shown["counts"]["failed"] == 10 and shown["counts"]["sent"] == 0
    reasons = {f["reason"]: f["count"] for f in shown["failures"]}
    assert len(reasons) == 2 and set(reasons.values()) == {5}, reasons
    for reason in reasons:
        assert "stored" in reason and "set them again with `baas push credentials set PROJECT" in reason
        if damage == "unknown key":
            assert "secrets.previous_encryption_keys" in reason
    assert fcm.token_requests == tokens_before
    warnings = [r for r in caplog.records if r.name == "baas.push" and "credentials" in r.getMessage()]
    assert sorted(r.getMessage().split()[2] for r in warnings) == ["apns", "fcm"]   # one each, not one a delivery
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []              # no provider error logged
    listed = admin.get(f"/admin/v1/projects/{native.id}/push/credentials")
    assert listed.status_code == 200 and len(listed.get_json()) == 2     # the public parts still show


def test_credentials_are_sealed_again_after_an_encryption_key_change(native, make_app, fcm, apns):
    from baas.push import background_runners
    from baas.sealing import Sealer
    from baas.testing import ApiClient, ProjectKeys

    old_app = native.server.client.application
    old_key = old_app.extensions["baas"].config["secrets"]["encryption_key"]
    stored = _stored_credentials(old_app)
    before = {d["_id"]: d for d in stored.find({"project_id": native.id})}
    assert len(before) == 2
    new_key = "the-new-encryption-key-" + "n" * 24
    new_id = Sealer(new_key).key_id
    # The restart with the new key: the old one moves to previous_encryption_keys (baas.sealing).
    app = make_app({**PUSH_CONFIG, "push.native_ca_file": apns.ca_file, "push.request_timeout_seconds": 3,
                    "secrets.encryption_key": new_key, "secrets.previous_encryption_keys": [old_key]})
    after = {d["_id"]: d for d in stored.find({"project_id": native.id})}
    assert {d["sealed"].split(".")[1] for d in after.values()} == {new_id}        # resealed at start
    assert all(after[i]["revision"] == before[i]["revision"] for i in before)     # same credentials
    client = app.test_client()
    restarted = ProjectKeys(native.id, native.client_key, native.server_key,
                            ApiClient(client, {"X-API-Key": native.client_key}),
                            ApiClient(client, {"X-API-Key": native.server_key}))
    delivery, = background_runners(app.extensions["baas"])
    try:
        user = sign_up_user(restarted)
        android, iphone = fcm_token(), apns.device_token()
        register(user, "fcm", android)
        register(user, "apns", iphone)
        first = send(restarted, {"audience": {"users": [user.user_id]}, "notification": {"title": "new key"}})
        delivery.drain()
        assert status(restarted, first)["counts"]["sent"] == 2
        assert len(fcm.for_token(android)) == 1 and len(apns.for_token(iphone)) == 1

        # A value still under the old key (written by a process that had not restarted yet) is resealed on use.
        for doc in before.values():
            stored.replace_one({"_id": doc["_id"]}, doc)
        app.extensions["baas"].extra["push"].credentials._cache.clear()
        second = send(restarted, {"audience": {"users": [user.user_id]}, "notification": {"title": "again"}})
        delivery.drain()
        assert status(restarted, second)["counts"]["sent"] == 2
        assert {d["sealed"].split(".")[1] for d in stored.find({"project_id": native.id})} == {new_id}
    finally:
        delivery.close()
    # Now the old key can go: a process with the new key alone opens them.
    alone = make_app({**PUSH_CONFIG, "secrets.encryption_key": new_key})
    credentials = alone.extensions["baas"].extra["push"].credentials
    assert credentials.load(native.id, "fcm").client_email == native.fcm_account["client_email"]
    assert credentials.load(native.id, "apns").key_id == native.apns_key["key_id"]


def test_deleting_a_project_deletes_its_native_credentials_before_the_project_goes(native, admin, client, apns,
                                                                                   delivery, monkeypatch):
    from baas.testing import create_project

    app = native.server.client.application
    credentials = app.extensions["baas"].extra["push"].credentials
    stored = _stored_credentials(app)
    assert stored.count_documents({"project_id": native.id}) == 2
    assert credentials.load(native.id, "apns") is not None          # cached in this process too

    class Failing:                   # the database fails just while the credentials are removed
        def __getattr__(self, name):
            return getattr(stored, name)

        def delete_many(self, *args, **kwargs):
            from pymongo.errors import AutoReconnect
            raise AutoReconnect("database went away")  # what pymongo raises when the server goes

    # A failure while removing them stops the delete with the project still marked, not gone without them ...
    monkeypatch.setattr(credentials, "collection", Failing())
    failed = admin.delete(f"/admin/v1/projects/{native.id}", json={"confirm": native.id})
    assert failed.status_code == 503 and "went away" not in failed.get_data(as_text=True)
    assert app.extensions["baas"].projects.collection.find_one({"_id": native.id})["status"] == "deleting"
    assert stored.count_documents({"project_id": native.id}) == 2
    monkeypatch.setattr(credentials, "collection", stored)

    # ... and repeating it finishes the job.
    assert admin.delete(f"/admin/v1/projects/{native.id}", json={"confirm": native.id}).status_code == 204
    assert stored.count_documents({"project_id": native.id}) == 0

    again = create_project(admin, client, native.id)
    assert admin.get(f"/admin/v1/projects/{again.id}/push/credentials").get_json() == []
    assert credentials.load(again.id, "fcm") is None and credentials.load(again.id, "apns") is None
    user = sign_up_user(again)
    register(user, "apns", apns.device_token())
    message_id = send(again, {"audience": {"all": True}, "notification": {"title": "x"}})
    delivery.drain()
    assert [f["reason"] for f in status(again, message_id)["failures"]] == [
        "APNs is not configured for this project (`baas push credentials set PROJECT apns ...`)"]


def _attempts_recorded(delivery, message_id):
    return {item["attempt"] for item in delivery.queue.find({"message_id": message_id, "kind": "batch"})}


def test_an_expired_apns_provider_token_is_renewed_and_the_delivery_resent_at_once(native, apns, delivery):
    user = sign_up_user(native)
    iphones = [apns.device_token() for _ in range(3)]
    for token in iphones:
        register(user, "apns", token)
    send(native, {"audience": {"users": [user.user_id]}, "notification": {"title": "one"}})
    delivery.drain()
    key_id = native.apns_key["key_id"]
    first_jwt, = apns.jwts_of(key_id)

    apns.expire_jwts()          # the cached JWT is now too old for Apple
    message_id = send(native, {"audience": {"users": [user.user_id]}, "notification": {"title": "two"}})
    delivery.drain()
    shown = status(native, message_id)
    assert shown["status"] == "done" and shown["counts"]["sent"] == 3 and shown["failures"] == []
    assert _attempts_recorded(delivery, message_id) == {1}      # resent within the attempt, no retry queued
    assert all(apns.attempts[t] == 3 and len(apns.for_token(t)) == 2 for t in iphones)
    jwts = apns.jwts_of(key_id)
    assert len(jwts) == 2 and first_jwt in jwts                  # one renewal for the three refused streams
    assert {r.headers["authorization"] for t in iphones for r in apns.for_token(t)[1:]} \
        == {f"bearer {(jwts - {first_jwt}).pop()}"}


def test_a_renewed_apns_token_refused_as_expired_again_fails_the_message_naming_the_clock(native, apns, delivery):
    user = sign_up_user(native)
    iphones = [apns.device_token() for _ in range(3)]
    for token in iphones:
        register(user, "apns", token)
    apns.clock_ahead = 2 * 3600          # this server's clock two hours behind Apple's: every token is "expired"
    try:
        message_id = send(native, {"audience": {"users": [user.user_id]}, "notification": {"title": "x"}})
        delivery.drain()
    finally:
        apns.clock_ahead = 0.0
    shown = status(native, message_id)
    assert shown["status"] == "done" and shown["counts"]["failed"] == 3 and shown["counts"]["sent"] == 0
    failure, = shown["failures"]
    assert failure["count"] == 3 and "ExpiredProviderToken" in failure["reason"] and "clock" in failure["reason"]
    assert len(apns.jwts_of(native.apns_key["key_id"])) == 2     # the first token and one renewal, no more
    assert all(apns.attempts[t] == 2 for t in iphones) and _attempts_recorded(delivery, message_id) == {1}
    assert len(user.get("/v1/push/devices").get_json()) == 3      # a clock problem removes no device


@pytest.mark.parametrize("provider, field, url", [
    ("fcm", "base_url", "https://10.0.0.1"),
    ("fcm", "base_url", "https://[::1]:8443"),
    ("fcm", "token_url", "https://169.254.169.254/token"),            # the cloud metadata service
    ("fcm", "token_url", "https://[::ffff:192.168.1.10]/token"),
    ("apns", "base_url", "https://127.0.0.2"),
    ("apns", "base_url", "https://100.64.0.1:443"),                   # shared (CGNAT) space
])
def test_native_urls_naming_a_local_address_are_refused_when_saved(project, admin, fcm, apns, provider, field, url):
    path = f"/admin/v1/projects/{project.id}/push/credentials/{provider}"
    body = {"service_account": fcm.service_account(), field: url} if provider == "fcm" \
        else {**apns.signing_key(), field: url}
    response = admin.put(path, json=body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["code"] == 400 and "push.allow_http_hosts" in error["errors"][field][0]
    assert "private, loopback or link-local" in error["message"]
    assert admin.get(f"/admin/v1/projects/{project.id}/push/credentials").get_json() == []


def test_native_urls_by_a_name_that_resolves_locally_fail_their_deliveries_when_connecting(project, admin, fcm,
                                                                                          apns, delivery):
    # Saved: "localhost" is a name, judged by what it resolves to when a delivery connects (not exempt here:
    # push.allow_http_hosts lists 127.0.0.1 only).
    def local(origin):
        return origin.replace("127.0.0.1", "localhost")

    path = f"/admin/v1/projects/{project.id}/push/credentials"
    user = sign_up_user(project)
    android, iphone = fcm_token(), apns.device_token()
    register(user, "fcm", android)
    register(user, "apns", iphone)
    assert admin.put(f"{path}/apns", json={**apns.signing_key(), "base_url": local(apns.origin)}).status_code == 200
    account = fcm.service_account()
    for urls, what in (({"token_url": local(account["token_uri"]).replace("http:", "https:")}, "token endpoint"),
                       ({"base_url": local(fcm.origin).replace("http:", "https:")}, "endpoint")):
        assert admin.put(f"{path}/fcm", json={"service_account": account, **urls}).status_code == 200
        tokens_before = fcm.token_requests
        message_id = send(project, {"audience": {"users": [user.user_id]}, "notification": {"title": "x"}})
        delivery.drain()
        shown = status(project, message_id)
        assert shown["status"] == "done" and shown["counts"]["failed"] == 2 and shown["counts"]["sent"] == 0
        reasons = sorted(f["reason"] for f in shown["failures"])
        assert reasons[0].startswith("APNs endpoint refused: localhost resolves to 127.0.0.1")
        assert reasons[1].startswith(f"FCM {what} refused: localhost resolves to 127.0.0.1")
        assert all("push.allow_http_hosts" in r for r in reasons)
        assert fcm.token_requests - tokens_before == (1 if what == "endpoint" else 0)
    assert fcm.for_token(android) == [] and iphone not in apns.attempts
    assert len(user.get("/v1/push/devices").get_json()) == 2


def test_push_allow_http_hosts_exempts_a_native_host_by_name(make_app, apns):
    from baas.push import background_runners
    from baas.testing import admin_client, create_project

    app = make_app({**PUSH_CONFIG, "push.allow_http_hosts": ["127.0.0.1", "localhost"],
                    "push.native_ca_file": apns.ca_file})
    admin = admin_client(app)
    project = create_project(admin, app.test_client())
    key = apns.signing_key()
    assert admin.put(f"/admin/v1/projects/{project.id}/push/credentials/apns",
                     json={**key, "base_url": apns.origin.replace("127.0.0.1", "localhost")}).status_code == 200
    user = sign_up_user(project)
    iphone = apns.device_token()
    register(user, "apns", iphone)
    delivery, = background_runners(app.extensions["baas"])
    try:
        message_id = send(project, {"audience": {"users": [user.user_id]}, "notification": {"title": "x"}})
        delivery.drain()
    finally:
        delivery.close()
    assert status(project, message_id)["counts"]["sent"] == 1 and len(apns.for_token(iphone)) == 1
