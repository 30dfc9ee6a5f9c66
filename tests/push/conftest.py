import pytest

from native_emulators import ApnsEmulator, FcmEmulator
from push_receiver import PUSH_CONFIG, PushReceiver


@pytest.fixture(scope="session")
def receiver():
    server = PushReceiver()
    yield server
    server.close()


@pytest.fixture(scope="session")
def fcm():
    server = FcmEmulator()
    yield server
    server.close()


@pytest.fixture(scope="session")
def apns(tmp_path_factory):
    server = ApnsEmulator(tmp_path_factory.mktemp("apns-ca"))
    yield server
    server.close()


@pytest.fixture
def app(make_app):
    return make_app(PUSH_CONFIG)


@pytest.fixture
def delivery(app):
    """The app's push runner, run synchronously by the test with `.drain()`."""
    from baas.push import background_runners

    runner, = background_runners(app.extensions["baas"])
    yield runner
    runner.close()
