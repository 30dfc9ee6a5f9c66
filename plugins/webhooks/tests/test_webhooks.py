"""webhooks: signed deliveries to a loopback receiver, retries with backoff, SSRF refusals."""
from __future__ import annotations

import http.server
import threading
import time

import pytest

from baas.jobs.service import JobRunner
from baas.testing import admin_client, create_project, project_with_plugin, wait_until
from baas_plugins import webhooks
from baas_plugins.webhooks.delivery import SafeSender, TargetRefused

SECRET = "whsec-" + "k" * 20


class Receiver:
    """A loopback HTTP server that checks each webhook's signature the way the docs tell receivers to."""

    def __init__(self, answers=(204,)):
        self.received = []
        self.answers = list(answers)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"body": body, "headers": dict(self.headers),
                                          "valid": webhooks.verify(SECRET, self.headers["X-Baas-Signature"], body),
                                          "path": self.path})
                status = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.redirect_to = None
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    served = Receiver()
    yield served
    served.close()


def setup_project(make_app, url, allow=True):
    overrides = {"plugins.settings": {"webhooks": {"allow_networks": ["127.0.0.0/8"]}}} if allow else {}
    app = make_app(overrides)
    project = project_with_plugin(app, "webhooks", {"endpoints": [
        {"url": url, "secret": SECRET, "events": ["documents.create", "documents.delete"]}]})
    jobs = app.extensions["baas"].extra["jobs"]
    return app, project, jobs


def deliver(jobs, project):
    jobs.request_run("webhooks.deliver", project.id)
    runner = JobRunner(jobs, owner="test")
    while (run := jobs.claim(time.time(), runner.owner)) is not None:
        jobs.execute(run, runner.owner)


def queue(app, project):
    return app.extensions["baas"].mongo.project_db(project.id)["_webhooks_deliveries"]


def test_settings_are_checked_at_enable_time(make_app):
    app = make_app()
    admin = admin_client(app)
    project = create_project(admin, app.test_client())
    bad = admin.post(f"/admin/v1/projects/{project.id}/plugins/webhooks",
                     json={"settings": {"endpoints": [{"url": "ftp://x", "secret": "short"}]}})
    assert bad.status_code == 400 and "endpoints.0.url" in bad.get_json()["errors"]["settings"]


def test_events_are_delivered_signed_by_the_job_not_the_request(make_app, receiver):
    app, project, jobs = setup_project(make_app, receiver.url)
    created = project.server.post("/v1/collections/orders/documents", json={"total": 3}).get_json()
    project.server.patch(f"/v1/collections/orders/documents/{created['_id']}", json={"total": 4})
    assert receiver.received == []  # nothing is sent inside the request
    deliver(jobs, project)
    wait_until(lambda: len(receiver.received) == 1, message="the delivery")
    got = receiver.received[0]
    assert got["valid"] and got["headers"]["X-Baas-Event"] == "documents.create"
    import json
    payload = json.loads(got["body"])
    assert payload["data"]["id"] == created["_id"] and payload["project"] == project.id
    assert not webhooks.verify("another-secret-entirely", got["headers"]["X-Baas-Signature"], got["body"])
    assert not webhooks.verify(SECRET, got["headers"]["X-Baas-Signature"], got["body"] + b" ")
    assert queue(app, project).find_one({})["status"] == "delivered"


def test_failed_deliveries_are_retried_with_backoff(make_app):
    flaky = Receiver(answers=[500, 204])
    try:
        app, project, jobs = setup_project(make_app, flaky.url)
        project.server.post("/v1/collections/orders/documents", json={"total": 1})
        deliver(jobs, project)
        item = queue(app, project).find_one({})
        assert item["status"] == "pending" and item["attempts"] == 1 and item["error"] == "HTTP 500"
        assert item["next_attempt"] > time.time() + 5
        deliver(jobs, project)
        assert queue(app, project).find_one({})["attempts"] == 1  # not due yet
        queue(app, project).update_one({"_id": item["_id"]}, {"$set": {"next_attempt": 0}})
        deliver(jobs, project)
        assert queue(app, project).find_one({})["status"] == "delivered"
        assert [r["valid"] for r in flaky.received] == [True, True]
    finally:
        flaky.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.1.2.3"])
def test_private_targets_are_refused_after_resolution(host):
    with pytest.raises(TargetRefused):
        SafeSender().check(f"http://{host}:9/hook")


def test_ssrf_to_loopback_is_refused_without_the_operator_allowing_it(make_app, receiver):
    url = receiver.url.replace("127.0.0.1", "localhost")  # a name that resolves to loopback
    app, project, jobs = setup_project(make_app, url, allow=False)
    project.server.post("/v1/collections/orders/documents", json={"total": 1})
    deliver(jobs, project)
    item = queue(app, project).find_one({})
    assert item["status"] == "failed" and item["error"].startswith("refused")
    assert receiver.received == []


def test_redirects_are_checked_too(receiver):
    receiver.answers = [302]
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data"
    with pytest.raises(TargetRefused, match="169.254.169.254"):
        SafeSender(allow_networks=["127.0.0.0/8"]).post(receiver.url, b"{}", {})
    assert len(receiver.received) == 1
