"""DNS at delivery time: lookups have a deadline, a slow push service's name holds up no other, and failures are
remembered for a while instead of being looked up again on every send."""
import socket
import threading
import time

import pytest

from baas.egress import LookupTimedOut, TargetRefused, connect_address
from baas.push import providers
from baas.push.apns import ApnsProvider
from baas.push.http1 import IDLE_ORIGIN_SECONDS, UNRESOLVED_SECONDS
from baas.push.providers import RESOLVE_SECONDS, WebPushProvider
from baas.testing import sign_up_user, wait_until
from push_receiver import PUSH_CONFIG

PUBLIC = "93.184.216.34"        # a public address: passes the egress check (nothing here connects to it)
PUBLIC_MOVED = "93.184.216.35"
PRIVATE = "10.1.2.3"


class FakeDns:
    """socket.getaddrinfo for the names a test sets up (any other name goes to the real resolver): each answers
    its address, fails, or is silent (waits for `released`, as a DNS server that never answers)."""

    def __init__(self, real):
        self.real = real
        self.addresses: dict[str, str] = {}
        self.failing: set[str] = set()
        self.silent: set[str] = set()
        self.released = threading.Event()
        self.calls: dict[str, int] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def getaddrinfo(self, host, port, *args, **kwargs):
        if host not in self.addresses and host not in self.failing and host not in self.silent:
            return self.real(host, port, *args, **kwargs)
        with self.lock:
            self.calls[host] = self.calls.get(host, 0) + 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if host in self.silent:
                self.released.wait(30)
            if host in self.failing or host not in self.addresses:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (self.addresses[host], port))]
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    yield fake
    fake.released.set()  # the lookup threads a silent name held go back to the shared pool


@pytest.fixture
def webpush():
    """A Web Push provider's blocking pools, resolving through baas.egress as deliveries do."""
    provider = WebPushProvider(None, 2, 1.0, allowed_hosts=["exempt.test"])
    yield provider
    provider.close()


def test_a_silent_dns_server_makes_connect_address_give_up_at_its_deadline(dns):
    dns.silent.update({"silent.test", "exempt.test"})
    for exempt in (frozenset(), frozenset({"exempt.test"})):
        host = "exempt.test" if exempt else "silent.test"
        started = time.monotonic()
        with pytest.raises(LookupTimedOut, match="did not resolve within 0.3 s"):
            connect_address(host, 443, exempt, timeout=0.3)
        assert time.monotonic() - started < 3  # its deadline, not the DNS server's 30 s
    assert dns.calls == {"silent.test": 1, "exempt.test": 1}
    dns.addresses["private.test"] = PRIVATE
    with pytest.raises(TargetRefused):
        connect_address("private.test", 443, timeout=0.3)


def test_one_origin_resolving_slowly_holds_up_no_other(dns, webpush):
    dns.addresses.update({"a.test": PUBLIC, "b.test": PUBLIC, "c.test": PUBLIC_MOVED})
    now = time.time()
    fresh = webpush._pools.get("https://b.test", now)
    dns.silent.add("a.test")
    got = {}

    def slow_get():
        got["a"] = webpush._pools.get("https://a.test", now)

    slow = threading.Thread(target=slow_get, daemon=True)
    slow.start()
    wait_until(lambda: dns.calls.get("a.test"), timeout=5, message="a.test being looked up")
    started = time.monotonic()
    assert webpush._pools.get("https://b.test", now) is fresh
    first = webpush._pools.get("https://c.test", now)      # needs resolving, while a.test's lookup hangs
    assert first.address == PUBLIC_MOVED
    taken = webpush._pools.take_all()
    assert time.monotonic() - started < 1
    assert slow.is_alive() and "a" not in got
    assert sorted(pool.host for pool in taken) == ["b.test", "c.test"]
    dns.released.set()
    slow.join(5)
    assert got["a"].address == PUBLIC and got["a"].host == "a.test"


def test_a_refused_origin_is_not_looked_up_again_until_its_period_ends(dns, webpush):
    dns.addresses["private.test"] = PRIVATE
    now = time.time()
    for later in (0, 1, RESOLVE_SECONDS - 1):
        with pytest.raises(TargetRefused, match="private"):
            webpush._pools.get("https://private.test", now + later)
    assert dns.calls["private.test"] == 1
    dns.addresses["private.test"] = PUBLIC
    assert webpush._pools.get("https://private.test", now + RESOLVE_SECONDS + 1).address == PUBLIC
    assert dns.calls["private.test"] == 2


def test_a_failed_lookup_is_remembered_for_a_short_while(dns, webpush):
    dns.failing.add("down.test")
    now = time.time()
    for later in (0, UNRESOLVED_SECONDS - 1):
        with pytest.raises(OSError, match="cannot resolve down.test"):
            webpush._pools.get("https://down.test", now + later)
    assert dns.calls["down.test"] == 1
    dns.failing.clear()
    dns.addresses["down.test"] = PUBLIC
    assert webpush._pools.get("https://down.test", now + UNRESOLVED_SECONDS + 1).address == PUBLIC
    assert dns.calls["down.test"] == 2


def test_a_dns_blip_keeps_the_working_pool_and_a_refusal_drops_it(dns, webpush):
    dns.addresses["blip.test"] = PUBLIC
    now = time.time()
    working = webpush._pools.get("https://blip.test", now)
    dns.failing.add("blip.test")
    stale = now + RESOLVE_SECONDS + 1
    assert webpush._pools.get("https://blip.test", stale) is working
    assert webpush._pools.get("https://blip.test", stale + UNRESOLVED_SECONDS - 1) is working
    assert dns.calls["blip.test"] == 2  # kept for the short period without looking up again
    assert webpush._pools.get("https://blip.test", stale + UNRESOLVED_SECONDS + 1) is working
    assert dns.calls["blip.test"] == 3 and not working.closed
    dns.failing.clear()
    dns.addresses["blip.test"] = PRIVATE
    with pytest.raises(TargetRefused):
        webpush._pools.get("https://blip.test", stale + 2 * UNRESOLVED_SECONDS + 2)
    assert working.closed
    assert webpush._pools.take_all() == []


def test_origins_nobody_asks_for_are_forgotten_and_their_connections_closed(dns, webpush):
    dns.addresses.update({"gone.test": PUBLIC, "busy.test": PUBLIC, "refused.test": PRIVATE})
    now = time.time()
    gone = webpush._pools.get("https://gone.test", now)
    busy = webpush._pools.get("https://busy.test", now)
    with pytest.raises(TargetRefused):
        webpush._pools.get("https://refused.test", now)
    later = now
    while later + RESOLVE_SECONDS + 1 <= now + RESOLVE_SECONDS + IDLE_ORIGIN_SECONDS:  # busy.test is used all along
        later += RESOLVE_SECONDS + 1
        assert webpush._pools.get("https://busy.test", later) is busy
    assert not gone.closed and not busy.closed
    assert webpush._pools.get("https://busy.test", later + RESOLVE_SECONDS + 1) is busy  # its renewal sweeps
    assert gone.closed and not busy.closed
    assert set(webpush._pools._pools) == set(webpush._pools._origin_locks) == {"https://busy.test"}
    # A forgotten origin asked for again is looked up afresh.
    assert webpush._pools.get("https://gone.test", later + RESOLVE_SECONDS + 2).address == PUBLIC
    assert dns.calls["gone.test"] == 2 and dns.calls["refused.test"] == 1


def test_a_batch_looks_up_all_its_push_services_at_once(dns, webpush):
    # Each origin still needing a lookup is looked up beside the others, so slow names cost a batch the wait for
    # the slowest one, not their sum; the deliveries then find every outcome kept, failures included.
    dns.addresses.update({"slow-a.test": PUBLIC, "slow-b.test": PUBLIC_MOVED, "known.test": PUBLIC})
    dns.silent.update({"slow-a.test", "slow-b.test"})
    dns.failing.add("down.test")
    now = time.time()
    known = webpush._async_pools.get("https://known.test", now)
    origins = ["https://slow-a.test", "https://slow-b.test", "https://known.test", "https://down.test"]
    warming = threading.Thread(target=webpush._async_pools.warm, args=(origins, now))
    warming.start()
    try:
        wait_until(lambda: dns.most_in_flight >= 2, timeout=10, message="both slow names looked up together")
    finally:
        dns.released.set()
        warming.join(10)
    assert not warming.is_alive()
    assert webpush._async_pools.get("https://slow-a.test", now).address == PUBLIC
    assert webpush._async_pools.get("https://slow-b.test", now).address == PUBLIC_MOVED
    assert webpush._async_pools.get("https://known.test", now) is known
    with pytest.raises(OSError, match="cannot resolve down.test"):
        webpush._async_pools.get("https://down.test", now)
    assert dns.calls == {"slow-a.test": 1, "slow-b.test": 1, "known.test": 1, "down.test": 1}


def test_apns_remembers_failed_lookups_and_keeps_its_address_through_a_blip(dns):
    apns = ApnsProvider(None, 1.0)
    try:
        dns.failing.add("down.test")
        for _ in range(3):  # every batch of a project whose APNs name does not resolve: one lookup per period
            with pytest.raises(OSError, match="cannot resolve down.test"):
                apns._address("https://down.test")
        assert dns.calls["down.test"] == 1

        dns.addresses["private.test"] = PRIVATE
        now = time.time()
        for later in (0, RESOLVE_SECONDS - 1):
            with pytest.raises(TargetRefused, match="private"):
                apns._addresses.get("https://private.test", now + later)
        assert dns.calls["private.test"] == 1

        dns.addresses["apns.test"] = PUBLIC
        assert apns._address("http://apns.test") == PUBLIC
        dns.failing.add("apns.test")
        stale = now + RESOLVE_SECONDS + 1
        assert apns._addresses.get("http://apns.test", stale).address == PUBLIC  # the blip keeps it
        assert apns._addresses.get("http://apns.test", stale + UNRESOLVED_SECONDS - 1).address == PUBLIC
        assert dns.calls["apns.test"] == 2
        dns.failing.clear()
        dns.addresses["apns.test"] = PUBLIC_MOVED
        assert apns._addresses.get("http://apns.test", stale + UNRESOLVED_SECONDS + 1).address == PUBLIC_MOVED
    finally:
        apns.close()


@pytest.fixture
def app(make_app):
    # Retries far enough out that one drain is one attempt: the test reads the first attempt's outcomes.
    return make_app({**PUSH_CONFIG, "push.retry_base_seconds": 60, "push.retry_max_seconds": 60})


def test_a_delivery_to_a_silent_dns_server_is_retried_and_the_rest_are_sent(project, receiver, delivery, dns,
                                                                             monkeypatch):
    monkeypatch.setattr(providers, "DELIVERY_LOOKUP_SECONDS", 0.3)
    user = sign_up_user(project)
    fine = receiver.device()
    silent = receiver.device()
    dns.addresses["push.silent-dns.example"] = PUBLIC  # resolves at subscribe, then its DNS server goes quiet
    for subscription in (fine.subscription(), silent.subscription(endpoint="https://push.silent-dns.example/p/1")):
        response = user.post("/v1/push/subscriptions", json=subscription)
        assert response.status_code == 201, response.get_json()
    dns.silent.add("push.silent-dns.example")
    response = project.server.post("/v1/push/messages", json={"audience": {"users": [user.user_id]},
                                                              "notification": {"title": "dns"}})
    assert response.status_code == 202, response.get_json()
    message_id = response.get_json()["id"]
    started = time.monotonic()
    delivery.drain()
    assert time.monotonic() - started < 10  # the worker gave up on the lookup, not waited for the DNS server

    def results():
        rows = project.server.get(f"/v1/push/messages/{message_id}/deliveries").get_json()["deliveries"]
        return rows if len(rows) == 2 else None

    rows = wait_until(results, timeout=5, message="both deliveries recorded")
    outcomes = sorted((row["outcome"], row["reason"]) for row in rows)
    assert outcomes[0][0] == "retry" and "did not resolve within 0.3 s" in outcomes[0][1]
    assert outcomes[1] == ("sent", "")
    assert [got.payload["title"] for got in receiver.for_device(fine)] == ["dns"]
    assert dns.calls["push.silent-dns.example"] == 2  # the subscribe's lookup and the delivery's one
    shown = project.server.get(f"/v1/push/messages/{message_id}").get_json()
    assert shown["counts"]["sent"] == 1 and shown["counts"]["failed"] == 0 and shown["counts"]["pending"] == 1
