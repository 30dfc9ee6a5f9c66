"""Auth test fixtures: cheap (but valid) argon2id parameters, a real SMTP server."""
import pytest
from aiosmtpd.controller import Controller

from baas.storage.embedded import free_port
from baas.testing import ApiClient, create_project

from auth_helpers import CHEAP_HASHING, Inbox


@pytest.fixture
def app(make_app):
    return make_app(CHEAP_HASHING)


@pytest.fixture
def auth_app(make_app):
    """`auth_app(overrides)` -> (app, admin ApiClient, its test client), with cheap hashing."""
    from baas.testing import ADMIN_TOKEN

    def build(overrides=None):
        application = make_app({**CHEAP_HASHING, **(overrides or {})})
        client = application.test_client()
        return application, ApiClient(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}), client

    return build


@pytest.fixture
def new_project():
    """`new_project(admin, client, settings=None)` -> ProjectKeys."""
    def build(admin, client, settings=None):
        return create_project(admin, client, settings=settings)

    return build


@pytest.fixture
def smtp_inbox():
    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
