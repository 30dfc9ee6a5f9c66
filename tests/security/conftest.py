"""Attacker's review fixtures: cheap (valid) argon2id parameters so many sign-ups stay fast."""
import pytest

from security_helpers import CHEAP_HASHING, open_collection  # noqa: F401  (fixture)


@pytest.fixture
def app(make_app):
    return make_app(CHEAP_HASHING)
