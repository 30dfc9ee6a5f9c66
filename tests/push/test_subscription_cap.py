"""One user keeps at most push.max_subscriptions_per_user subscriptions and devices together; a new one drops
their least recently updated."""
import os

import pytest
from push_receiver import PUSH_CONFIG

from baas.testing import sign_up_user


@pytest.fixture
def app(make_app):
    return make_app({**PUSH_CONFIG, "push.max_subscriptions_per_user": 3})


def subscribe(user, device) -> str:
    response = user.post("/v1/push/subscriptions", json=device.subscription())
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()["id"]


def register_apns(user, token: str) -> str:
    response = user.post("/v1/push/devices", json={"provider": "apns", "token": token})
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()["id"]


def kept(user) -> set[str]:
    browsers = user.get("/v1/push/subscriptions")
    devices = user.get("/v1/push/devices")
    assert browsers.status_code == 200 and devices.status_code == 200
    return {s["id"] for s in browsers.get_json()} | {d["id"] for d in devices.get_json()}


def test_a_new_subscription_beyond_the_cap_drops_the_users_least_recently_updated(project, receiver):
    alice, bob = sign_up_user(project), sign_up_user(project)
    second_device = receiver.device()
    first, second = subscribe(alice, receiver.device()), subscribe(alice, second_device)
    phone_token = os.urandom(32).hex()
    phone = register_apns(alice, phone_token)
    bobs = {subscribe(bob, receiver.device()) for _ in range(3)}
    assert kept(alice) == {first, second, phone}

    fourth_device = receiver.device()
    fourth = subscribe(alice, fourth_device)
    assert kept(alice) == {second, phone, fourth}   # the oldest went
    assert kept(bob) == bobs                        # each user has their own allowance

    # Subscribing again refreshes: the phone is the least recently updated now, so it goes next.
    assert alice.post("/v1/push/subscriptions", json=second_device.subscription()).status_code == 200
    fifth = subscribe(alice, receiver.device())
    assert kept(alice) == {second, fourth, fifth}

    # A browser or device that changes hands counts for its new user.
    assert bob.post("/v1/push/subscriptions", json=fourth_device.subscription()).status_code == 200
    assert kept(alice) == {second, fifth}
    bob_now = kept(bob)
    assert len(bob_now) == 3 and fourth in bob_now
    tablet_token = os.urandom(32).hex()
    tablet = register_apns(alice, tablet_token)
    assert register_apns(bob, tablet_token) == tablet
    assert kept(alice) == {second, fifth}
    assert len(kept(bob)) == 3 and {fourth, tablet} <= kept(bob)
