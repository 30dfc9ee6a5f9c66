"""Web Push end to end: subscriptions, every audience, delivery through a real loopback push service."""
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from baas.testing import create_project, sign_up_user, wait_until


def subscribe(user, device, **extra):
    response = user.post("/v1/push/subscriptions", json=device.subscription(**extra))
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def send(project, body):
    response = project.server.post("/v1/push/messages", json=body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def status(project, message_id):
    response = project.server.get(f"/v1/push/messages/{message_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_public_key_matches_the_admin_view_and_signs_deliveries(project, admin, receiver, delivery):
    key = project.client.get("/v1/push/vapid-public-key").get_json()
    shown = admin.get(f"/admin/v1/projects/{project.id}/push/vapid").get_json()
    assert shown["public_key"] == key["public_key"] and shown["current"] is True
    assert "sealed" not in str(shown) and "private" not in str(shown)
    user = sign_up_user(project)
    device = receiver.device()
    subscribe(user, device)
    message_id = send(project, {"audience": {"users": [user.user_id]},
                                "notification": {"title": "Hi", "body": "There", "url": "/inbox"}})
    delivery.drain()
    got, = receiver.for_device(device)
    assert got.error is None
    assert got.public_key == key["public_key"]
    assert got.payload == {"title": "Hi", "body": "There", "url": "/inbox", "message_id": message_id}
    assert got.claims["aud"] == receiver.origin
    assert got.headers["TTL"] == "86400" and got.headers["Urgency"] == "normal"
    shown = status(project, message_id)
    assert shown["status"] == "done"
    assert shown["counts"] == {"total": 1, "sent": 1, "failed": 0, "removed": 0, "unconfirmed": 0, "pending": 0, "cancelled": 0}


def test_subscribing_twice_is_one_subscription_and_topics_change(project, receiver):
    user = sign_up_user(project)
    device = receiver.device()
    first = user.post("/v1/push/subscriptions", json=device.subscription(topics=["news"]))
    assert first.status_code == 201
    again = user.post("/v1/push/subscriptions", json=device.subscription())
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["topics"] == ["news"] and "keys" not in again.get_json()
    listed = user.get("/v1/push/subscriptions").get_json()
    assert [s["id"] for s in listed] == [first.get_json()["id"]]
    sub_id = first.get_json()["id"]
    changed = user.patch(f"/v1/push/subscriptions/{sub_id}", json={"add": ["sports"], "remove": ["news"]})
    assert changed.status_code == 200 and changed.get_json()["topics"] == ["sports"]
    other = sign_up_user(project)
    assert other.delete(f"/v1/push/subscriptions/{sub_id}").status_code == 404  # not theirs
    assert user.delete(f"/v1/push/subscriptions/{sub_id}").status_code == 204
    assert user.get("/v1/push/subscriptions").get_json() == []


def test_subscribing_needs_a_signed_in_user(project, receiver):
    response = project.client.post("/v1/push/subscriptions", json=receiver.device().subscription())
    assert response.status_code == 401


@pytest.mark.parametrize("change, field", [
    ({"endpoint": "ftp://push.example.com/x"}, "endpoint"),
    ({"endpoint": "http://push.example.com/x"}, "endpoint"),
    ({"endpoint": "https://push.example.com/" + "a" * 2100}, "endpoint"),
    ({"endpoint": "https://10.0.0.1/x"}, "endpoint"),
    ({"endpoint": "https://user:pw@push.example.com/x"}, "endpoint"),
    ({"endpoint": 5}, "endpoint"),
    ({"keys": {"p256dh": "not base64!", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),
    ({"keys": {"p256dh": "BA" + "A" * 85, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),  # not on the curve
    ({"keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),
    ({"keys": {"auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),
    ({"keys": "x"}, "keys"),
    ({"expirationTime": "tomorrow"}, "expirationTime"),
    ({"topics": ["bad topic"]}, "topics"),
    ({"topics": [f"t{i}" for i in range(51)]}, "topics"),
    ({"extra": 1}, "extra"),
])
def test_malformed_subscriptions_get_400_naming_the_field(project, receiver, change, field):
    user = sign_up_user(project)
    body = receiver.device().subscription()
    body.update(change)
    response = user.post("/v1/push/subscriptions", json=body)
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]


def test_auth_secret_must_be_16_bytes(project, receiver):
    user = sign_up_user(project)
    body = receiver.device().subscription()
    body["keys"]["auth"] = "AAAAAAAAAAAAAAAAAAAA"  # 15 bytes
    response = user.post("/v1/push/subscriptions", json=body)
    assert response.status_code == 400 and "keys.auth" in response.get_json()["errors"]


def test_every_audience_kind_reaches_exactly_its_devices(project, receiver, delivery):
    alice, bob, carol = (sign_up_user(project, roles=roles) for roles in (["pro"], [], ["pro"]))
    devices = {name: receiver.device() for name in ("alice1", "alice2", "bob", "carol")}
    subscribe(alice, devices["alice1"], topics=["news"])
    subscribe(alice, devices["alice2"])
    subscribe(bob, devices["bob"], topics=["news", "sports"])
    subscribe(carol, devices["carol"])
    audiences = {
        "users": ({"users": [alice.user_id]}, {"alice1", "alice2"}),
        "topics": ({"topics": ["sports"]}, {"bob"}),
        "filter": ({"filter": {"roles": "pro", "email": {"$ne": carol.email}}}, {"alice1", "alice2"}),
        "all": ({"all": True}, set(devices)),
    }
    for kind, (audience, expected) in audiences.items():
        message_id = send(project, {"audience": audience, "notification": {"title": kind}})
        delivery.drain()
        reached = {name for name, device in devices.items()
                   if any(r.payload == {"title": kind, "message_id": message_id} for r in receiver.for_device(device))}
        assert reached == expected, kind
        assert status(project, message_id)["counts"]["sent"] == len(expected)


def test_audience_filter_is_limited_to_public_user_fields(project):
    for bad in ({"password_hash": {"$exists": True}}, {"$where": "1"}, {"$or": [{"secret": 1}]}):
        response = project.server.post("/v1/push/messages", json={"audience": {"filter": bad},
                                                                   "notification": {"title": "x"}})
        assert response.status_code == 400, bad
        assert "audience.filter" in response.get_json()["errors"]


def test_sending_needs_a_server_key_with_push_send(project, admin, client):
    body = {"audience": {"all": True}, "notification": {"title": "x"}}
    assert project.client.post("/v1/push/messages", json=body).status_code == 403
    key = admin.post(f"/admin/v1/projects/{project.id}/keys",
                     json={"kind": "server", "name": "docs", "scopes": ["documents:read"]}).get_json()["key"]
    limited = project.server.with_headers(**{"X-API-Key": key})
    assert limited.post("/v1/push/messages", json=body).status_code == 403


def test_payload_over_4096_encrypted_bytes_is_refused_naming_the_size(project):
    body = {"audience": {"all": True}, "notification": {"title": "x", "body": "y" * 2048, "data": {"z": "w" * 2000}}}
    response = project.server.post("/v1/push/messages", json=body)
    assert response.status_code == 400
    message = response.get_json()["message"]
    assert "4096" in message and "bytes" in message
    assert any(ch.isdigit() for ch in message.split("would be ")[1].split(" ")[0])


@pytest.mark.parametrize("change", [{"ttl": -1}, {"ttl": 10**9}, {"urgency": "now"}, {"topic": "x" * 33},
                                    {"send_at": "tomorrow"}, {"audience": {"users": []}},
                                    {"audience": {"all": True, "users": ["u"]}}, {"notification": {}},
                                    {"notification": {"title": 5}}, {"notification": {"sound": "x"}}])
def test_malformed_messages_get_400(project, change):
    body = {"audience": {"all": True}, "notification": {"title": "x"}, **change}
    assert project.server.post("/v1/push/messages", json=body).status_code == 400


def test_gone_devices_are_pruned_and_rejected_ones_fail_with_the_reason(app, project, receiver, delivery):
    user = sign_up_user(project)
    gone, rejected, fine = receiver.device(), receiver.device(), receiver.device()
    for device in (gone, rejected, fine):
        subscribe(user, device)
    receiver.answer(gone, (410, {}))
    receiver.answer(rejected, (413, {}))
    message_id = send(project, {"audience": {"users": [user.user_id]}, "notification": {"title": "x"}})
    delivery.drain()
    shown = status(project, message_id)
    assert shown["counts"] == {"total": 3, "sent": 1, "failed": 1, "removed": 1, "unconfirmed": 0, "pending": 0,
                               "cancelled": 0}
    assert shown["failures"] == [{"reason": "413 Request Entity Too Large: told to fail", "count": 1}]
    endpoints = {s["endpoint"] for s in user.get("/v1/push/subscriptions").get_json()}
    assert endpoints == {rejected.endpoint, fine.endpoint}
    results = project.server.get(f"/v1/push/messages/{message_id}/deliveries").get_json()["deliveries"]
    assert sorted(r["outcome"] for r in results) == ["failed", "removed", "sent"]
    counted = {sample.labels["outcome"]: sample.value
               for family in text_string_to_metric_families(app.extensions["baas"].metrics.render().decode())
               for sample in family.samples if sample.name == "baas_push_deliveries_total"}
    assert counted == {"delivered": 1, "expired": 1, "failed": 1}


def test_throttled_and_failing_services_are_retried_with_backoff(project, receiver, delivery):
    user = sign_up_user(project)
    throttled, flaky, dead = receiver.device(), receiver.device(), receiver.device()
    for device in (throttled, flaky, dead):
        subscribe(user, device)
    receiver.answer(throttled, (429, {"Retry-After": "1"}))
    receiver.answer(flaky, (500, {}), (503, {}))
    receiver.answer(dead, *[(500, {})] * 10)
    message_id = send(project, {"audience": {"users": [user.user_id]}, "notification": {"title": "again"}})
    wait_until(lambda: delivery.run_once() is not None and status(project, message_id)["status"] == "done",
               timeout=20, message="retries finished")
    attempts = receiver.attempts[throttled.token]
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 0.95  # Retry-After honoured
    assert len(receiver.attempts[flaky.token]) == 3
    assert len(receiver.attempts[dead.token]) == 5  # push.max_attempts
    flaky_gaps = [b - a for a, b in zip(receiver.attempts[flaky.token], receiver.attempts[flaky.token][1:])]
    assert flaky_gaps[0] >= 0.025 and flaky_gaps[1] >= 0.05  # exponential, base 0.05 with jitter down to half
    shown = status(project, message_id)
    assert shown["counts"]["sent"] == 2 and shown["counts"]["failed"] == 1
    assert "gave up after 5 attempts" in shown["failures"][0]["reason"]
    assert len(receiver.for_device(throttled)) == 1


def test_cancelling_stops_what_is_not_sent(project, receiver, delivery):
    user = sign_up_user(project)
    subscribe(user, receiver.device())
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    message_id = send(project, {"audience": {"all": True}, "notification": {"title": "x"}, "send_at": later})
    assert status(project, message_id)["status"] == "queued"
    cancelled = project.server.delete(f"/v1/push/messages/{message_id}")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    listed = project.server.get("/v1/push/messages").get_json()["messages"]
    assert [m["id"] for m in listed] == [message_id]


def test_a_deleted_user_takes_its_subscriptions(project, receiver):
    user = sign_up_user(project)
    subscribe(user, receiver.device())
    from baas.context import Services  # noqa: F401

    assert project.server.delete(f"/v1/users/{user.user_id}").status_code == 204
    app = project.server.client.application
    assert app.extensions["baas"].extra["push"].subscriptions(project.id).count_documents({}) == 0


def test_rotation_keeps_old_subscriptions_signed_with_their_key(project, admin, receiver, delivery):
    user = sign_up_user(project)
    old_device = receiver.device()
    subscribe(user, old_device)
    old_key = project.client.get("/v1/push/vapid-public-key").get_json()["public_key"]
    rotated = admin.post(f"/admin/v1/projects/{project.id}/push/vapid/rotate").get_json()
    assert rotated["public_key"] != old_key and rotated["previous"][0]["public_key"] == old_key
    new_device = receiver.device()
    subscribe(user, new_device)
    send(project, {"audience": {"users": [user.user_id]}, "notification": {"title": "k"}})
    delivery.drain()
    assert receiver.for_device(old_device)[0].public_key == old_key
    assert receiver.for_device(new_device)[0].public_key == rotated["public_key"]


def test_openapi_declares_the_push_contract(client):
    spec = client.get("/openapi.json").get_json()
    paths = spec["paths"]
    send = paths["/v1/push/messages"]["post"]
    assert {"202", "400"} <= set(send["responses"]) and send["security"] == [{"apiKey": []}]
    assert "audience" in spec["components"]["schemas"]["MessageIn"]["properties"]
    subscribe = paths["/v1/push/subscriptions"]["post"]
    assert {"200", "201", "400"} <= set(subscribe["responses"])
    assert subscribe["security"] == [{"apiKey": [], "userToken": []}]
    assert "/v1/push/vapid-public-key" in paths
    assert "/admin/v1/projects/{project_id}/push/vapid/rotate" in paths
    from openapi_spec_validator import validate

    validate(spec)


def test_vapid_admin_needs_the_admin_token(project, client):
    assert client.get(f"/admin/v1/projects/{project.id}/push/vapid").status_code == 401
    assert project.server.post(f"/admin/v1/projects/{project.id}/push/vapid/rotate").status_code == 401


def test_finished_messages_go_after_the_retention_days(project, receiver, delivery):
    user = sign_up_user(project)
    subscribe(user, receiver.device())
    message_id = send(project, {"audience": {"all": True}, "notification": {"title": "old"}})
    delivery.drain()
    assert status(project, message_id)["status"] == "done"
    assert delivery.sweep_retention(now=time.time() + 29 * 86400) == 0  # push.retention_days is 30
    assert delivery.sweep_retention(now=time.time() + 31 * 86400) >= 2  # the message and its queue items
    assert project.server.get(f"/v1/push/messages/{message_id}").status_code == 404


class _Signature:
    """A plugin: appends a signature to every push body, and refuses pushes to everyone."""

    from baas.plugins.hookspecs import hookimpl

    @hookimpl
    def baas_before_push_send(self, project_id, message):
        from baas.errors import Rejected

        if message["audience"].get("all"):
            raise Rejected("Pushes to everyone need approval.")
        message["notification"]["body"] = message["notification"].get("body", "") + " (via plugin)"


def test_plugins_see_and_may_change_or_refuse_a_send(app, project, receiver, delivery):
    app.extensions["baas"].hooks.register(_Signature(), name="test-signature")
    user = sign_up_user(project)
    device = receiver.device()
    subscribe(user, device)
    refused = project.server.post("/v1/push/messages", json={"audience": {"all": True},
                                                             "notification": {"title": "x"}})
    assert refused.status_code == 422 and "approval" in refused.get_json()["message"]
    message_id = send(project, {"audience": {"users": [user.user_id]}, "notification": {"body": "hi"}})
    delivery.drain()
    assert receiver.for_device(device)[0].payload == {"body": "hi (via plugin)", "message_id": message_id}


def test_expired_subscriptions_are_not_sent_to_and_go(project, receiver, delivery):
    user = sign_up_user(project)
    expired, live = receiver.device(), receiver.device()
    subscribe(user, expired, expirationTime=(time.time() - 60) * 1000)
    subscribe(user, live, expirationTime=(time.time() + 3600) * 1000)
    message_id = send(project, {"audience": {"users": [user.user_id]}, "notification": {"title": "x"}})
    delivery.drain()
    assert receiver.for_device(expired) == [] and len(receiver.for_device(live)) == 1
    assert status(project, message_id)["counts"]["total"] == 1
    assert [s["endpoint"] for s in user.get("/v1/push/subscriptions").get_json()] == [live.endpoint]


def test_messages_list_newest_first_in_pages(project):
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    ids = [send(project, {"audience": {"all": True}, "notification": {"title": str(i)}, "send_at": later})
           for i in range(3)]
    first = project.server.get("/v1/push/messages?limit=2").get_json()
    assert [m["id"] for m in first["messages"]] == ids[:0:-1] and first["next"] == ids[1]
    rest = project.server.get(f"/v1/push/messages?limit=2&before={first['next']}").get_json()
    assert [m["id"] for m in rest["messages"]] == [ids[0]] and rest["next"] is None


def test_resubscribing_after_a_topic_change_keeps_the_topics(project, receiver):
    user = sign_up_user(project)
    device = receiver.device()
    sub_id = subscribe(user, device)["id"]
    assert user.patch(f"/v1/push/subscriptions/{sub_id}", json={"topics": ["a", "b"]}).status_code == 200
    again = user.post("/v1/push/subscriptions", json=device.subscription())
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["id"] == sub_id and again.get_json()["topics"] == ["a", "b"]


def test_a_silent_dns_server_makes_subscribe_answer_503_at_its_deadline(project, monkeypatch):
    """getaddrinfo has no timeout; a subscribe gives up on the lookup instead of holding its request thread."""
    import socket
    import threading

    from baas.push import service as push_service

    released = threading.Event()
    real_getaddrinfo = socket.getaddrinfo

    def silent_dns(host, *args, **kwargs):
        if host == "push.silent-dns.example":
            released.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", silent_dns)
    monkeypatch.setattr(push_service, "SUBSCRIBE_LOOKUP_SECONDS", 0.3)
    user = sign_up_user(project)
    body = {"endpoint": "https://push.silent-dns.example/send/1", "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22}}
    started = time.monotonic()
    try:
        response = user.post("/v1/push/subscriptions", json=body)
        waited = time.monotonic() - started
    finally:
        released.set()
    assert response.status_code == 503, response.get_json()
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["message"] == "The endpoint's host name could not be looked up in time; retry shortly."
    assert waited < 10  # gave up at its deadline, not when the DNS server did (30 s)
    assert user.get("/v1/push/subscriptions").get_json() == []


def test_push_timing_writes_one_line_per_plan_and_batch(project, receiver, app, tmp_path, monkeypatch):
    """BAAS_PUSH_TIMING (read by benchmarks/push.py --timing): where each plan's and batch's time went."""
    import orjson

    from baas.push import background_runners

    timing = tmp_path / "timing.jsonl"
    monkeypatch.setenv("BAAS_PUSH_TIMING", str(timing))
    runner, = background_runners(app.extensions["baas"])
    try:
        user = sign_up_user(project)
        devices = [receiver.device() for _ in range(3)]
        for device in devices:
            subscribe(user, device)
        send(project, {"audience": {"users": [user.user_id]}, "notification": {"title": "timed"}})
        runner.drain()
    finally:
        runner.close()
    lines = [orjson.loads(line) for line in timing.read_bytes().splitlines()]
    assert [line["deliveries"] for line in lines] == [0, 3]  # the plan, then its one batch
    batch = lines[1]
    assert {"read", "wait"} <= set(batch["phases"]) and all(v >= 0 for v in batch["phases"].values())
    assert batch["seconds"] > 0
