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


def test_banner_names_where_files_go(tmp_path):
    """An embedded database with S3 configured must not claim local files: an operator reads this line to know
    where uploads end up."""
    from baas.config import from_mapping
    from baas.runtime import BootstrapReport
    from baas.server import banner

    def data_line(config):
        lines = []
        banner(config, BootstrapReport(first_start=False), embedded=True, echo=lines.append)
        return next(line for line in lines if line.lstrip().startswith("data"))

    local = from_mapping({"data_dir": str(tmp_path)})
    assert data_line(local).endswith("(embedded database and local files)")
    on_s3 = from_mapping({"data_dir": str(tmp_path), "storage": {"s3": {"endpoint": "minio.internal:9000",
                                                                         "bucket": "uploads", "access_key": "k",
                                                                         "secret_key": "s"}}})
    line = data_line(on_s3)
    assert "local files" not in line
    assert line.endswith("(embedded database; files in S3 bucket uploads at minio.internal:9000)")
