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


