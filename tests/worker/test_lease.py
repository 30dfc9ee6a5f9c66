"""Leases and queue claims against the real database server: one holder at a time, takeover after expiry."""
import threading

import pymongo
import pytest

from baas.worker.lease import Leases, claim_one, owned
from baas.worker.runner import BackgroundWork


@pytest.fixture
def db(base_config):
    client = pymongo.MongoClient(base_config["mongodb"]["uri"])
    database = client[base_config["mongodb"]["db_prefix"] + "worker"]
    yield database
    client.drop_database(database.name)
    client.close()


def test_a_lease_has_one_holder_until_it_expires(db):
    leases = Leases(db["leases"])
    assert leases.acquire("sweep", "a", 30, now=1000.0)
    assert not leases.acquire("sweep", "b", 30, now=1010.0)
    assert leases.acquire("sweep", "a", 30, now=1010.0)  # the holder renews
    assert leases.holder("sweep", now=1020.0) == "a"
    assert leases.acquire("sweep", "b", 30, now=1041.0)  # a's lease ran out at 1040
    assert leases.holder("sweep", now=1041.0) == "b"
    leases.release("sweep", "a")  # not a's any more: changes nothing
    assert leases.holder("sweep", now=1042.0) == "b"
    leases.release("sweep", "b")
    assert leases.acquire("sweep", "c", 30, now=1043.0)


def test_concurrent_first_acquires_give_one_holder(db):
    leases = Leases(db["leases"])
    winners, barrier = [], threading.Barrier(6)

    def contend(owner):
        barrier.wait()
        if leases.acquire("job", owner, 60, now=5000.0):
            winners.append(owner)

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_queue_items_are_claimed_once_each_and_retaken_after_expiry(db):
    queue = db["queue"]
    queue.insert_many([{"_id": i, "state": "pending"} for i in range(30)])
    claimed: list = []
    lock = threading.Lock()

    def drain(owner):
        while True:
            item = claim_one(queue, {"state": "pending"}, owner, 60, now=100.0)
            if item is None:
                return
            assert queue.update_one(owned(item["_id"], owner), {"$set": {"state": "done"}}).modified_count == 1
            with lock:
                claimed.append(item["_id"])

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == list(range(30))

    queue.insert_one({"_id": "crashed", "state": "pending"})
    assert claim_one(queue, {"state": "pending"}, "dead", 60, now=200.0)["_id"] == "crashed"
    assert claim_one(queue, {"state": "pending"}, "alive", 60, now=230.0) is None  # still leased
    taken = claim_one(queue, {"state": "pending"}, "alive", 60, now=261.0)
    assert taken["_id"] == "crashed" and taken["lease_owner"] == "alive"
    # the first holder's late finish no longer matches
    assert queue.update_one(owned("crashed", "dead"), {"$set": {"state": "done"}}).matched_count == 0


def test_background_work_keeps_running_after_a_failing_round():
    calls = []

    class Flaky:
        name, interval = "flaky", 0.01

        def run_once(self, now):
            calls.append(now)
            if len(calls) == 1:
                raise RuntimeError("first round fails")

    work = BackgroundWork([Flaky()]).start()
    try:
        from baas.testing import wait_until
        wait_until(lambda: len(calls) >= 3, timeout=5, message="three rounds")
    finally:
        work.stop()
    assert not any(thread.is_alive() for thread in work._threads)


def test_worker_command_refuses_the_embedded_default(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from baas_cli.main import cli

    monkeypatch.delenv("BAAS_MONGODB_URI", raising=False)
    monkeypatch.setenv("BAAS_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["worker"])
    assert result.exit_code == 1
    assert "needs mongodb.uri" in result.output
