"""Real `baas worker` processes sharing the queue: a scheduled send fires once; a killed worker's batch is finished
by the other without sending anything twice."""
import signal
import time

import pytest

from baas.testing import WorkerProcess, sign_up_user, wait_until, with_overrides
from push_receiver import PUSH_CONFIG


@pytest.fixture
def start_worker(base_config, tmp_path):
    """`start_worker(**config overrides)` -> a running `baas worker` process (baas.testing.WorkerProcess)."""
    started = []

    def start(**overrides):
        config = with_overrides(base_config, {**PUSH_CONFIG, **overrides})
        started.append(WorkerProcess(config, tmp_path, name=f"worker-{len(started)}").start())
        return started[-1]

    yield start
    for worker in started:
        worker.stop(timeout=15)


def _subscribe_devices(project, receiver, count):
    user = sign_up_user(project)
    devices = []
    for _ in range(count):
        device = receiver.device()
        response = user.post("/v1/push/subscriptions", json=device.subscription())
        assert response.status_code == 201
        devices.append(device)
    return devices


def _status(project, message_id):
    return project.server.get(f"/v1/push/messages/{message_id}").get_json()


def test_a_scheduled_send_fires_once_with_two_workers(project, receiver, start_worker):
    devices = _subscribe_devices(project, receiver, 20)
    start_worker(), start_worker()
    send_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
    response = project.server.post("/v1/push/messages", json={
        "audience": {"all": True}, "notification": {"title": "at nine"}, "send_at": send_at})
    assert response.status_code == 202
    message_id = response.get_json()["id"]
    assert _status(project, message_id)["status"] == "queued"
    wait_until(lambda: _status(project, message_id)["status"] == "done", timeout=60, message="message done")
    for device in devices:
        assert [r.payload["title"] for r in receiver.for_device(device)] == ["at nine"]
    assert min(receiver.attempts[d.token][0] for d in devices) > 0
    assert _status(project, message_id)["counts"]["sent"] == len(devices)
    # A second firing would be claimed within a poll (0.1 s); the plan item is done, so nothing is due.
    queue = project.server.client.application.extensions["baas"].extra["push"].queue
    assert queue.find_one({"message_id": message_id, "state": "pending"}) is None
    assert sum(len(receiver.for_device(d)) for d in devices) == len(devices)


def test_a_killed_worker_batch_is_finished_by_the_other_and_nothing_twice(project, receiver, start_worker):
    devices = _subscribe_devices(project, receiver, 40)
    mine = {d.token for d in devices}  # the receiver is shared by the whole session
    senders = 4

    def received():
        return [r.token for r in receiver.received if r.token in mine]

    config = {"push.batch_size": 40, "push.senders": senders, "push.lease_seconds": 2}
    # After 10 answered deliveries every sender hangs on a request that did arrive: the kill lands mid-batch
    # with exactly `senders` requests in flight.
    receiver.hold(mine, after=10)
    try:
        first = start_worker(**config)
        response = project.server.post("/v1/push/messages", json={"audience": {"all": True},
                                                                   "notification": {"title": "once"}})
        message_id = response.get_json()["id"]
        wait_until(lambda: receiver.held == senders, timeout=60, message="every sender waiting on the service")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        at_kill = set(received())
    finally:
        receiver.release()
    assert len(at_kill) == 10 + senders
    start_worker(**config)
    wait_until(lambda: _status(project, message_id)["status"] == "done", timeout=60, message="taken over")
    tokens = [r.token for r in receiver.received
              if r.token in mine and r.payload == {"title": "once", "message_id": message_id}]
    twice = {t for t in tokens if tokens.count(t) > 1}
    assert not twice and set(tokens) == mine, (f"{len(twice)} devices got it twice, {len(mine - set(tokens))} "
                                               f"never; {_status(project, message_id)}")
    shown = _status(project, message_id)
    assert shown["counts"]["sent"] == len(devices) - senders
    # The requests in flight at the kill arrived, but nobody saw the answer: recorded, not resent.
    assert shown["counts"]["unconfirmed"] == senders
    rows = project.server.get(f"/v1/push/messages/{message_id}/deliveries?limit=200").get_json()["deliveries"]
    assert sorted(r["outcome"] for r in rows) == sorted(["sent"] * (len(devices) - senders)
                                                        + ["unconfirmed"] * senders)


def test_baas_serve_delivers_itself_when_told_to(project, receiver, server_process):
    """The embedded default's path: `worker.run_in_serve` makes `baas serve` run the delivery loop."""
    devices = _subscribe_devices(project, receiver, 2)
    server_process({**PUSH_CONFIG, "worker.run_in_serve": "always"})
    message_id = project.server.post("/v1/push/messages", json={
        "audience": {"all": True}, "notification": {"title": "from serve"}}).get_json()["id"]
    wait_until(lambda: _status(project, message_id)["status"] == "done", timeout=60, message="delivered by serve")
    assert [[r.payload["title"] for r in receiver.for_device(d)] for d in devices] == [["from serve"]] * 2
