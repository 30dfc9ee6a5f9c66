import sys
from pathlib import Path

import pytest

from baas.testing import *  # noqa: F401,F403

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "push"))
from push_receiver import PushReceiver  # noqa: E402  (the loopback push service of tests/push)


@pytest.fixture(scope="module")
def receiver():
    server = PushReceiver()
    yield server
    server.close()
