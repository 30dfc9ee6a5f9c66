import pytest

from baas.principal import KeyInfo, Principal, ProjectInfo, UserInfo


@pytest.fixture
def docs(app):
    """The DocumentService of the test app, for service-level tests."""
    return app.extensions["baas"].documents


@pytest.fixture
def principals(project):
    """Build principals of the test project: server(), client(), user(id, *roles)."""
    class Factory:
        @staticmethod
        def server(settings=None):
            return Principal(project=ProjectInfo(project.id, project.id, settings or {}), key=KeyInfo("k1", "server"))

        @staticmethod
        def client(settings=None):
            return Principal(project=ProjectInfo(project.id, project.id, settings or {}), key=KeyInfo("k2", "client"))

        @staticmethod
        def user(user_id, *roles, settings=None, scopes=frozenset()):
            return Principal(project=ProjectInfo(project.id, project.id, settings or {}),
                             key=KeyInfo("k2", "client", frozenset(scopes)), user=UserInfo(id=user_id, roles=roles))

    return Factory
