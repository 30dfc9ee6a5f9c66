"""The delivery pipeline's bookkeeping: taking over a dead worker's batch, paged results, SSRF checks at delivery."""
import socket
import threading

import pytest

from baas.egress import TargetRefused, is_forbidden, resolve_public
from baas.push.delivery import decode_targets, encode
from baas.push.http1 import HostPool, ProtocolError
from baas.testing import sign_up_user, wait_until
from baas.worker.lease import claim_one
from push_receiver import PUSH_CONFIG


def _devices(project, receiver, count):
    user = sign_up_user(project)
    devices = [receiver.device() for _ in range(count)]
    for device in devices:
        assert user.post("/v1/push/subscriptions", json=device.subscription()).status_code == 201
    return user, devices


def _send(project, user, title):
    response = project.server.post("/v1/push/messages", json={"audience": {"users": [user.user_id]},
                                                               "notification": {"title": title}})
    assert response.status_code == 202
    return response.get_json()["id"]


def _planned_batch(delivery, message_id):
    """Expand the message into its batch items (as a worker would), and return the single batch item."""
    plan = claim_one(delivery.queue, {"_id": f"{message_id}:plan"}, delivery.owner, 60)
    delivery.plan(plan)
    batch, = delivery.queue.find({"message_id": message_id, "kind": "batch"})
    return {**batch, "items": decode_targets(delivery.targets.find_one({"_id": batch["_id"]}))}


def _die_holding(delivery, batch, inflight, results=()):
    """Leave the batch item as a worker killed mid-batch leaves it: its lease run out, progress saved so far."""
    delivery.queue.update_one({"_id": batch["_id"]}, {"$set": {
        "lease_owner": "a-dead-worker", "lease_until": 0.0, "inflight": inflight, "results": encode(list(results))}})


def _done(project, message_id):
    return project.server.get(f"/v1/push/messages/{message_id}").get_json()["status"] == "done"


def _got(receiver, devices, title):
    return [len([r for r in receiver.for_device(d) if r.payload and r.payload["title"] == title]) for d in devices]


def test_a_taken_over_batch_sends_what_never_started_and_records_what_was_in_flight(project, receiver, delivery):
    user, devices = _devices(project, receiver, 5)
    message_id = _send(project, user, "take over")
    batch = _planned_batch(delivery, message_id)
    by_id = {target["id"]: next(d for d in devices if d.endpoint == target["endpoint"]) for target in batch["items"]}
    ids = [target["id"] for target in batch["items"]]
    # The dead worker had one answer saved (a 503 to retry), two requests in flight, two never started.
    _die_holding(delivery, batch, inflight=ids[:3], results=[
        {"id": ids[2], "outcome": "retry", "status": 503, "reason": "503 Service Unavailable", "attempt": 1}])
    wait_until(lambda: delivery.run_once() is not None and _done(project, message_id), timeout=20,
               message="batch taken over and its retry sent")
    got = dict(zip(ids, _got(receiver, [by_id[i] for i in ids], "take over")))
    assert got == {ids[0]: 0, ids[1]: 0, ids[2]: 1, ids[3]: 1, ids[4]: 1}
    shown = project.server.get(f"/v1/push/messages/{message_id}").get_json()
    assert shown["status"] == "done"
    assert shown["counts"]["sent"] == 3 and shown["counts"]["unconfirmed"] == 2
    rows = project.server.get(f"/v1/push/messages/{message_id}/deliveries").get_json()["deliveries"]
    assert {r["id"]: r["outcome"] for r in rows if r["outcome"] != "retry"} == {
        ids[0]: "unconfirmed", ids[1]: "unconfirmed", ids[2]: "sent", ids[3]: "sent", ids[4]: "sent"}
    assert [r["attempt"] for r in rows if r["id"] == ids[2]] == [1, 2]


def test_a_push_service_slower_than_a_progress_save_still_gets_each_delivery_once(project, receiver, delivery):
    # No answer within FLUSH_SECONDS: the batch loop saves and renews with nothing new, then goes on waiting.
    user, devices = _devices(project, receiver, 3)
    receiver.delay = 0.5
    try:
        message_id = _send(project, user, "slow")
        wait_until(lambda: delivery.run_once() is not None and _done(project, message_id), timeout=20,
                   message="slow deliveries done")
    finally:
        receiver.delay = 0.0
    assert _got(receiver, devices, "slow") == [1, 1, 1]
    assert project.server.get(f"/v1/push/messages/{message_id}").get_json()["counts"]["sent"] == 3


def test_resend_unconfirmed_trades_a_possible_duplicate_for_delivery(make_app, project, receiver):
    from baas.push import background_runners

    app = make_app({**PUSH_CONFIG, "push.resend_unconfirmed": True})
    runner, = background_runners(app.extensions["baas"])
    try:
        user, devices = _devices(project, receiver, 3)
        message_id = _send(project, user, "at least once")
        batch = _planned_batch(runner, message_id)
        _die_holding(runner, batch, inflight=[t["id"] for t in batch["items"][:2]])
        runner.drain()
    finally:
        runner.close()
    assert _got(receiver, devices, "at least once") == [1, 1, 1]
    counts = project.server.get(f"/v1/push/messages/{message_id}").get_json()["counts"]
    assert counts["sent"] == 3 and counts["unconfirmed"] == 0


def test_deliveries_are_listed_in_pages(app, project, receiver, delivery):
    user, devices = _devices(project, receiver, 17)  # three batch items of 7, 7 and 3 (push.batch_size = 7)
    message_id = _send(project, user, "paged")
    delivery.drain()
    seen, after, pages = [], None, 0
    while True:
        query = "?limit=5" + (f"&after={after}" if after else "")
        page = project.server.get(f"/v1/push/messages/{message_id}/deliveries{query}").get_json()
        assert len(page["deliveries"]) <= 5
        seen += [row["id"] for row in page["deliveries"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert pages == 4 and len(seen) == len(set(seen)) == 17
    subscriptions = app.extensions["baas"].extra["push"].subscriptions(project.id)
    assert set(seen) == {s["_id"] for s in subscriptions.find({"user_id": user.user_id})}
    whole = project.server.get(f"/v1/push/messages/{message_id}/deliveries?limit=1000").get_json()
    assert [r["id"] for r in whole["deliveries"]] == seen and whole["next"] is None


@pytest.mark.parametrize("query, status", [("?limit=0", 422), ("?limit=1001", 422), ("?limit=x", 422),
                                           ("?after=" + "x" * 300, 422),
                                           ("?after=nonsense", 400), ("?after=pm_other:0:0@3", 400),
                                           ("?after={message}:0:0@x", 400)])
def test_bad_delivery_page_parameters_are_refused(project, receiver, delivery, query, status):
    user, _ = _devices(project, receiver, 1)
    message_id = _send(project, user, "q")
    response = project.server.get(f"/v1/push/messages/{message_id}/deliveries{query.format(message=message_id)}")
    assert response.status_code == status, response.get_json()
    assert "message" in response.get_json()


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
                                     "224.0.0.1"])
def test_private_addresses_are_forbidden(address):
    import ipaddress

    assert is_forbidden(ipaddress.ip_address(address))
    with pytest.raises(TargetRefused):
        resolve_public(address, 443)


def test_public_addresses_pass():
    assert resolve_public("8.8.8.8", 443) == ["8.8.8.8"]
    assert resolve_public("[2001:4860:4860::8888]", 443) == ["2001:4860:4860::8888"]


def test_a_subscription_whose_host_resolves_privately_is_refused(project):
    user = sign_up_user(project)
    # "localhost" and IP literals are refused by name; a name is resolved (here by /etc/hosts).
    host = socket.gethostname()
    body = {"endpoint": f"https://{host}/push/x", "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22}}
    response = user.post("/v1/push/subscriptions", json=body)
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"endpoint"}


def test_delivery_refuses_an_endpoint_that_resolves_privately_later(app, project, receiver, delivery):
    """A name that was public at subscribe time and points at this network at delivery time is not posted to."""
    user, (device,) = _devices(project, receiver, 1)
    service = app.extensions["baas"].extra["push"]
    rebound = device.endpoint.replace("127.0.0.1", socket.gethostname())  # the same receiver, by a private name
    service.subscriptions(project.id).update_one({"endpoint": device.endpoint},
                                                         {"$set": {"endpoint": rebound}})
    message_id = _send(project, user, "rebound")
    delivery.drain()
    assert receiver.for_device(device) == []
    shown = project.server.get(f"/v1/push/messages/{message_id}").get_json()
    assert shown["counts"]["failed"] == 1
    assert "private" in shown["failures"][0]["reason"]


class _RawService:
    """A TCP server that answers each request with the next canned reply, to test the client's HTTP reading."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.replies:
            conn, _ = self.sock.accept()
            self.connections += 1
            with conn, conn.makefile("rb") as reader:
                while self.replies:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        chunk = reader.readline()
                        if not chunk:
                            break
                        head += chunk
                    if not head:
                        break
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    reader.read(length)
                    reply, close = self.replies.pop(0)
                    conn.sendall(reply)
                    if close:
                        break


# (answer bytes, whether the service closes after it): interim 1xx, chunked, close, HTTP/1.0 until close, garbage.
CANNED_ANSWERS = [
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbad \r\n3\r\nkey\r\n0\r\n\r\n", False),
    (b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nConnection: close\r\nContent-Length: 4\r\n\r\nslow", True),
    (b"HTTP/1.0 500 Oops\r\n\r\nuntil close", True),
    (b"garbage\r\n\r\n", True),
]


def _post(pool):
    return pool.post(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")


def test_the_push_client_reads_chunked_interim_and_closing_answers():
    service = _RawService(CANNED_ANSWERS)
    pool = HostPool("http", "127.0.0.1", service.port, "127.0.0.1", 5, 4, None)
    first, second = _post(pool), _post(pool)
    assert (first.status, second.status, second.body) == (201, 400, b"bad key")
    third = _post(pool)
    assert (third.status, third.headers["retry-after"], third.body) == (429, "7", b"slow")
    fourth = _post(pool)
    assert (fourth.status, fourth.body) == (500, b"until close")
    with pytest.raises(ProtocolError):
        _post(pool)
    assert service.connections == 3  # kept alive until the service said close (or spoke HTTP/1.0)
    pool.close()


def _post_on_loop(pool, loop):
    """One POST through the event-loop client, waited for from this thread."""
    import concurrent.futures

    answer = concurrent.futures.Future()
    loop.call_soon_threadsafe(pool.post, b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
                              answer.set_result)
    result = answer.result(timeout=10)
    if isinstance(result, BaseException):
        raise result
    return result


def test_the_event_loop_push_client_reads_the_same_answers_and_times_out():
    import asyncio

    from baas.push.http1 import AsyncHostPool

    service = _RawService(CANNED_ANSWERS)
    silent = socket.create_server(("127.0.0.1", 0))  # connects (the kernel accepts), never answers
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        pool = AsyncHostPool(loop, "http", "127.0.0.1", service.port, "127.0.0.1", 0.5, 1, None)
        first, second = _post_on_loop(pool, loop), _post_on_loop(pool, loop)
        assert (first.status, second.status, second.body) == (201, 400, b"bad key")
        third = _post_on_loop(pool, loop)
        assert (third.status, third.headers["retry-after"], third.body) == (429, "7", b"slow")
        fourth = _post_on_loop(pool, loop)
        assert (fourth.status, fourth.body) == (500, b"until close")
        with pytest.raises(ProtocolError):
            _post_on_loop(pool, loop)
        assert service.connections == 3  # kept alive until the service said close (or spoke HTTP/1.0)
        assert pool.open == 0  # every connection closed and counted out: none leaks from the limit of one
        waiting = AsyncHostPool(loop, "http", "127.0.0.1", silent.getsockname()[1], "127.0.0.1", 0.3, 1, None)
        with pytest.raises(TimeoutError):
            _post_on_loop(waiting, loop)
        assert waiting.open == 0
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        silent.close()
