"""`baas serve` refuses to share a busy port; readiness holds under concurrent probes."""
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from baas.storage.blobs_local import LocalBlobStore


def test_serve_refuses_a_port_already_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "baas", "serve", "--data-dir", str(tmp_path / "data"),
                                 "--port", str(port)], capture_output=True, text=True, timeout=60,
                                env={"PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "data" / "db").exists(), "nothing may start before the port check"


def test_local_storage_probe_is_safe_under_concurrency(tmp_path):
    store = LocalBlobStore(tmp_path / "files")

    def probe(_):
        store.ping()
        return True

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(probe, range(400)))
    assert list((tmp_path / "files").iterdir()) == []
