"""Every files test runs twice: on the S3 server (moto, or MinIO with BAAS_TEST_S3_ENDPOINT) and on local disk."""
import pytest


@pytest.fixture(params=["s3", "local"])
def app(request, make_app):
    return make_app({"storage.s3.endpoint": None} if request.param == "local" else None)


@pytest.fixture
def backend(app):
    return "s3" if app.extensions["baas"].config["storage"]["s3"]["endpoint"] else "local"


@pytest.fixture
def files(app):
    return app.extensions["baas"].extra["files"]


@pytest.fixture
def blobs(app):
    return app.extensions["baas"].blobs


@pytest.fixture
def task_runner(files):
    """The file tasks runner of one worker process (not started: tests call run_once / drain)."""
    from baas.files.tasks import FileTaskRunner

    return FileTaskRunner(files, interval=0.05)


@pytest.fixture
def background(task_runner):
    """File tasks worked off in the background, as `baas worker` does, while the test runs."""
    from baas.worker.runner import BackgroundWork

    work = BackgroundWork([task_runner]).start()
    yield task_runner
    work.stop()


@pytest.fixture
def live_url(app):
    """The app on a real socket (werkzeug's threaded server), for clients that speak HTTP themselves (tuspy)."""
    import threading

    from werkzeug.serving import make_server

    from baas.storage.embedded import free_port

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
