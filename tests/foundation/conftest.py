"""Fixtures for the foundation tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from foundation_support import EmbeddedServer


@pytest.fixture
def embedded_server(tmp_path):
    """Start embedded servers: `embedded_server(data_dir, **env)`; all are stopped at the end of the test."""
    started = []

    def start(data_dir: Path, **env_extra) -> EmbeddedServer:
        server = EmbeddedServer(data_dir, tmp_path, env_extra).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
