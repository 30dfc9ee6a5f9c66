"""/metrics across several granian workers, and access logs that never carry a secret."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from baas.runtime import EMBEDDED_DATABASE_STATS
from baas.testing import ADMIN_TOKEN

METRICS_TOKEN = "metrics-scraper-token-" + "m" * 16
PASSWORD = "Sup3r-secret-passphrase-for-logs"


def samples(text: str) -> dict:
    """{(sample name, frozenset(labels)): value} from a Prometheus exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def request_count(found: dict, route: str, status: str, method: str = "GET") -> float:
    return found.get(("baas_http_requests_total",
                      frozenset({"method": method, "route": route, "status": status}.items())), 0)


@pytest.fixture
def served(server_process, tmp_path):
    return server_process({"server.workers": 2, "logging.format": "json", "metrics.token": METRICS_TOKEN,
                           "metrics.dir": str(tmp_path / "metrics")})


def test_metrics_sum_every_worker_and_logs_hold_no_secret(served, tmp_path):
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    created = requests.post(served.url + "/admin/v1/projects", json={"id": "obs", "name": "obs"}, headers=admin,
                            timeout=10)
    assert created.status_code == 201, created.text
    key = requests.post(served.url + "/admin/v1/projects/obs/keys", json={"kind": "client", "name": "c"},
                        headers=admin, timeout=10).json()["key"]
    signup = requests.post(served.url + "/v1/auth/signup", json={"email": "ann@example.com", "password": PASSWORD},
                           headers={"X-API-Key": key}, timeout=10)
    assert signup.status_code == 201, signup.text
    body = signup.json()
    me = requests.get(served.url + "/v1/auth/me", timeout=10,
                      headers={"X-API-Key": key, "Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    # A fresh connection per request: SO_REUSEPORT spreads them over both workers.
    for _ in range(40):
        assert requests.get(served.url + "/healthz", timeout=10).status_code == 200
    assert requests.get(served.url + "/no/such/path/secret-in-path", timeout=10).status_code == 404

    assert requests.get(served.url + "/metrics", timeout=10).status_code == 401
    wrong = requests.get(served.url + "/metrics", headers={"Authorization": "Bearer wrong-token-xxxxxxxxxxxx"},
                         timeout=10)
    assert wrong.status_code == 401 and wrong.json()["code"] == 401
    scraped = requests.get(served.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert scraped.status_code == 200
    assert scraped.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(scraped.text)
    assert request_count(found, "/healthz", "200") == 40
    assert request_count(found, "/v1/auth/signup", "201", "POST") == 1
    assert request_count(found, "<unmatched>", "404") == 1
    assert request_count(found, "/metrics", "401") == 2
    assert found[("baas_http_request_duration_seconds_count",
                  frozenset({"method": "GET", "route": "/healthz"}.items()))] == 40
    # The admin token reads metrics too.
    assert requests.get(served.url + "/metrics", headers=admin, timeout=10).status_code == 200
    worker_files = list(Path(tmp_path / "metrics").glob("counter_*.db"))
    assert len(worker_files) >= 2, worker_files  # both workers counted, and /metrics summed them

    log = served.output()
    for secret in (PASSWORD, key, ADMIN_TOKEN, METRICS_TOKEN, body["access_token"], body["refresh_token"],
                   "secret-in-path"):
        assert secret not in log, secret
    access = [json.loads(line) for line in log.splitlines() if line.startswith("{") and '"baas.access"' in line]
    by_route = {}
    for line in access:
        by_route.setdefault(line["route"], []).append(line)
    signup_line = by_route["/v1/auth/signup"][0]
    assert signup_line["status"] == 201 and signup_line["project"] == "obs"
    assert signup_line["request_id"] == signup.headers["X-Request-ID"]
    assert signup_line["duration_ms"] >= 0
    me_line = by_route["/v1/auth/me"][0]
    assert me_line["user_id"] == body["user"]["id"] and me_line["project"] == "obs"
    assert len(by_route["/healthz"]) == 40


def test_metrics_can_be_switched_off(make_app):
    client = make_app({"metrics.enabled": False}).test_client()
    response = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 404 and response.get_json()["code"] == 404


def test_feature_counters_show_in_the_scrape(app, client):
    metrics = app.extensions["baas"].metrics
    metrics.push_delivery("delivered")
    metrics.push_delivery("delivered")
    metrics.job_run("failed")
    metrics.file_bytes("in", 1500)
    app.extensions["baas"].mongo.platform["meta"].insert_one({"_id": EMBEDDED_DATABASE_STATS, "restarts": 3})
    with pytest.raises(ValueError):
        metrics.push_delivery("anything-a-caller-likes")
    found = samples(client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).get_data(as_text=True))
    assert found[("baas_push_deliveries_total", frozenset({"outcome": "delivered"}.items()))] == 2
    assert found[("baas_job_runs_total", frozenset({"outcome": "failed"}.items()))] == 1
    assert found[("baas_file_bytes_total", frozenset({"direction": "in"}.items()))] == 1500
    assert found[("baas_embedded_database_restarts_total", frozenset())] == 3  # as the watchdog counted them


def test_metrics_endpoint_is_in_the_openapi_document(client):
    operation = client.get("/openapi.json").get_json()["paths"]["/metrics"]["get"]
    assert {"200", "401", "404"} <= set(operation["responses"])
    assert operation["security"] == [{"adminToken": []}]


def test_background_counts_survive_a_database_that_is_away(app):
    """Counts a flush could not write are kept and written by the next flush: nothing counted is lost."""
    from baas.observability.metrics import SharedCounters
    from baas.storage.embedded import free_port
    from baas.storage.mongo import MongoStore

    platform = app.extensions["baas"].mongo.platform
    away = MongoStore(f"mongodb://127.0.0.1:{free_port()}/", "gone_", timeout_ms=200)  # nothing listens there
    try:
        counters = SharedCounters(away.platform["metrics_counters"])
        counters.add("job_runs", "succeeded", 2)
        counters.flush()  # fails: logged, kept
        counters.add("job_runs", "succeeded")
        counters.collection = platform["metrics_counters"]  # the database is back
        counters.flush()
    finally:
        away.close()
    assert platform["metrics_counters"].find_one({"_id": "job_runs"})["succeeded"] == 3
    counters.flush()  # nothing pending: nothing written twice
    assert platform["metrics_counters"].find_one({"_id": "job_runs"})["succeeded"] == 3


def test_route_templates_name_parameters_without_their_converters():
    from baas.observability.requests import route_template
    assert route_template("/v1/files/<string(length=24):file_id>/content") == "/v1/files/<file_id>/content"
    assert route_template("/v1/collections/<name>/documents/<doc_id>") == "/v1/collections/<name>/documents/<doc_id>"


def test_repeated_requests_are_each_counted_once(app, client):
    """The request counter and histogram keep their children per (method, route, status): each answer counts."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    before = samples(client.get("/metrics", headers=admin).get_data(as_text=True))
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 401
    after = samples(client.get("/metrics", headers=admin).get_data(as_text=True))
    assert request_count(after, "/healthz", "200") - request_count(before, "/healthz", "200") == 3
    assert request_count(after, "/metrics", "401") - request_count(before, "/metrics", "401") == 1
    count = ("baas_http_request_duration_seconds_count", frozenset({"method": "GET", "route": "/healthz"}.items()))
    assert after[count] - before.get(count, 0) == 3


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_access_lines_written_directly_are_what_logging_writes(log_format):
    import logging

    from baas.observability.logs import ACCESS_LOGGER, formatter

    fmt = formatter(log_format)
    access = {"request_id": "r1", "method": "GET", "route": "/v1/x/<name>", "status": 200, "duration_ms": 1.25,
              "project": "p", "user_id": None, "admin": False}
    message = "GET /v1/x/<name> 200 1.2ms"
    for created in (1764658800.0, 1764658800.999, 1764658859.5004):  # the cached second is reused, then renewed
        record = logging.getLogger(ACCESS_LOGGER).makeRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, message, (),
                                                            None, extra={"access": access})
        record.created, record.msecs = created, int((created - int(created)) * 1000)
        direct = fmt.access_line(created, int((created - int(created)) * 1000), ACCESS_LOGGER, message, access)
        assert direct == fmt.format(record)


def test_access_log_writes_directly_and_through_logging_when_someone_listens():
    import io
    import logging

    from baas.observability.logs import AccessLog, formatter

    logger = logging.getLogger("baas.test-access-direct")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.baas_access = True
    handler.setFormatter(formatter("json"))
    logger.addHandler(handler)
    seen: list = []

    class Listener(logging.Handler):
        def emit(self, record):
            seen.append(record)

    listener = Listener()
    try:
        log = AccessLog(logger)
        log.write("GET / 200 1.0ms", {"route": "/", "status": 200})
        assert json.loads(stream.getvalue())["route"] == "/" and seen == []
        logger.addHandler(listener)  # e.g. a test's or an embedding app's handler: it gets the record
        log.write("GET /a 404 1.0ms", {"route": "/a", "status": 404})
        assert [r.access["route"] for r in seen] == ["/a"]
        assert [json.loads(line)["route"] for line in stream.getvalue().splitlines()] == ["/", "/a"]
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(listener)


def test_made_up_methods_share_one_label_so_they_cannot_grow_the_series(app, client):
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for method in ("FOO1", "FOO2", "X" * 200):
        assert client.open("/healthz", method=method).status_code == 405
    scrape = client.get("/metrics", headers=admin).get_data(as_text=True)
    assert "FOO1" not in scrape and "X" * 200 not in scrape
    after = samples(scrape)
    other = [labels for (name, labels) in after if name == "baas_http_requests_total"
             and dict(labels).get("method") == "OTHER"]
    assert other and after[("baas_http_requests_total", other[0])] == 3
