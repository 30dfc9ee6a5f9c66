"""DNS at delivery time: lookups have a deadline, and one that passes it is a retry."""
import socket
import threading
import time

import pytest

from baas.egress import LookupTimedOut, TargetRefused, connect_address
from baas.push import providers
from baas.testing import sign_up_user, wait_until
from push_receiver import PUSH_CONFIG

PUBLIC = "93.184.216.34"        # a public address: passes the egress check (nothing here connects to it)
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
        self.lock = threading.Lock()

    def getaddrinfo(self, host, port, *args, **kwargs):
        if host not in self.addresses and host not in self.failing and host not in self.silent:
            return self.real(host, port, *args, **kwargs)
        with self.lock:
            self.calls[host] = self.calls.get(host, 0) + 1
        if host in self.silent:
            self.released.wait(30)
        if host in self.failing or host not in self.addresses:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (self.addresses[host], port))]


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    yield fake
    fake.released.set()  # the lookup threads a silent name held go back to the shared pool


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
