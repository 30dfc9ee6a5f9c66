import pytest

from push_receiver import PushReceiver

PUSH_CONFIG = {"push.allow_http_hosts": ["127.0.0.1"], "push.retry_base_seconds": 0.05,
               "push.retry_max_seconds": 2, "push.poll_seconds": 0.1, "push.senders": 4, "push.batch_size": 7}


@pytest.fixture(scope="session")
def receiver():
    server = PushReceiver()
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
