"""HTTP basics: one JSON error shape, request ids, body rules, OpenAPI, probes and CORS."""
from __future__ import annotations

import io
import json
import re

import pytest

from baas.storage.embedded import free_port
from baas.testing import create_project

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == status
    assert body["status"] and body["message"]
    assert set(body) <= {"code", "status", "message", "errors"}
    assert b"Traceback" not in response.data and b"<html" not in response.data.lower()
    return body


@pytest.mark.parametrize("path", ["/nothing", "/v1/nothing", "/admin/v1/nothing", "/admin/v1/projects/a/b/c/d"])
def test_unknown_route_is_404_json(client, path):
    body = assert_error(client.get(path), 404)
    assert body["status"] == "Not Found"


def test_unknown_client_route_with_a_key_is_404_json(project):
    assert_error(project.client.get("/v1/does-not-exist"), 404)


def test_wrong_method_is_405_json_with_allow(client, admin):
    response = admin.put("/admin/v1/projects", json={})
    assert_error(response, 405)
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed and "PUT" not in allowed
    response = client.post("/healthz", data="x", content_type="text/plain")   # a body does not turn 405 into 415
    assert_error(response, 405)
    assert "GET" in response.headers["Allow"]


def test_oversized_body_is_413_json(make_app):
    app = make_app({"server.max_body_bytes": 200})
    client = app.test_client()
    headers = {"Authorization": "Bearer " + app.extensions["baas"].config["admin_token"]}
    small = client.post("/admin/v1/projects", json={"id": "small-one"}, headers=headers)
    assert small.status_code == 201
    big = {"id": "big-one", "name": "x" * 190}
    body = assert_error(client.post("/admin/v1/projects", json=big, headers=headers), 413)
    assert "200" in body["message"]
    # Without Content-Length (chunked), the limit holds while reading.
    stream = io.BytesIO(b'{"id": "big-two", "name": "' + b"y" * 300 + b'"}')
    response = client.post("/admin/v1/projects", headers={**headers, "Content-Type": "application/json",
                                                          "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input": stream, "wsgi.input_terminated": True})
    assert_error(response, 413)
    ids = [p["id"] for p in client.get("/admin/v1/projects", headers=headers).get_json()]
    assert "small-one" in ids and "big-one" not in ids and "big-two" not in ids


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml"])
def test_wrong_content_type_is_415_json(admin, content_type):
    response = admin.post("/admin/v1/projects", data='{"id": "typed-one"}', headers={"Content-Type": content_type})
    body = assert_error(response, 415)
    assert "application/json" in body["message"]
    assert "typed-one" not in [p["id"] for p in admin.get("/admin/v1/projects").get_json()]


def test_json_suffix_content_types_are_accepted(admin):
    response = admin.post("/admin/v1/projects", data='{"id": "suffixed-one"}',
                          headers={"Content-Type": "application/vnd.api+json"})
    assert response.status_code == 201


@pytest.mark.parametrize("payload", ['{"id": ', "{'id': 'x'}", "[1, 2", "\xff\xfe", "{", "{\"id\": \"a\"} trailing"])
def test_malformed_json_is_400_json(admin, payload):
    response = admin.post("/admin/v1/projects", data=payload, headers={"Content-Type": "application/json"})
    body = assert_error(response, 400)
    assert body["errors"] == {"json": ["Invalid JSON body."]}


def test_admin_api_without_or_with_wrong_token_is_401(client):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer"}, {"Authorization": "Token x"}):
        body = assert_error(client.get("/admin/v1/projects", headers=headers), 401)
        assert "admin" in body["message"].lower()


def test_request_id_is_generated_and_echoed(client, admin):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
    assert client.get("/healthz", headers={"X-Request-ID": "trace-123.abc"}).headers["X-Request-ID"] == \
        "trace-123.abc"
    # Error responses carry it too; an unsafe incoming id is replaced, not echoed.
    response = client.get("/nothing", headers={"X-Request-ID": "evil; Set-Cookie: x"})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    response = admin.post("/admin/v1/projects", json={"id": "!"}, headers={"X-Request-ID": "req-400"})
    assert response.status_code == 400 and response.headers["X-Request-ID"] == "req-400"
    assert client.get("/healthz", headers={"X-Request-ID": "a" * 200}).headers["X-Request-ID"] != "a" * 200


def test_openapi_and_docs(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = json.loads(response.data)
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "baas"
    for path in ("/admin/v1/projects", "/admin/v1/projects/{project_id}", "/admin/v1/projects/{project_id}/keys",
                 "/admin/v1/projects/{project_id}/keys/{key_id}/rotate", "/v1/project", "/healthz", "/readyz"):
        assert path in spec["paths"], path
    assert "apiKey" in spec["components"]["securitySchemes"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.mimetype == "text/html"
    assert b"swagger-ui" in docs.data and b"openapi.json" in docs.data


def test_probes(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "checks": {"mongodb": "ok", "storage": "ok"}}


def test_readyz_is_503_naming_unreachable_storage(make_app):
    closed = free_port()
    app = make_app({"storage.s3.endpoint": f"127.0.0.1:{closed}", "storage.s3.timeout_seconds": 1})
    response = app.test_client().get("/readyz")
    body = assert_error(response, 503)
    assert "storage" in body["message"] and "mongodb" not in body["message"]
    assert body["errors"]["mongodb"] == "ok"
    assert f"127.0.0.1:{closed}" in body["errors"]["storage"]


def test_readyz_is_503_naming_both_when_both_are_down(tmp_path):
    closed = free_port()
    from baas import create_app

    config = {"mongodb": {"uri": f"mongodb://127.0.0.1:{closed}/", "timeout_ms": 300},
              "admin_token": "x" * 20, "jwt": {"secret": "s" * 40}, "data_dir": str(tmp_path / "data"),
              "storage": {"s3": {"endpoint": "127.0.0.1:1", "access_key": "a", "secret_key": "b", "secure": False,
                                 "timeout_seconds": 1}}}
    app = create_app(config)
    try:
        body = assert_error(app.test_client().get("/readyz"), 503)
        assert "mongodb" in body["message"] and "storage" in body["message"]
        assert f"127.0.0.1:{closed}" in body["errors"]["mongodb"]
    finally:
        app.extensions["baas"].close()


# --- CORS ------------------------------------------------------------------------------------------------------

@pytest.fixture
def cors_project(admin, client):
    return create_project(admin, client, settings={"cors_origins": [ALLOWED]})


def preflight(client, origin, path="/v1/project"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                         "Access-Control-Request-Headers": "X-API-Key"})


def test_cors_preflight_for_an_allowed_origin(client, cors_project):
    response = preflight(client, ALLOWED)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-API-Key" in response.headers["Access-Control-Allow-Headers"]
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert "Origin" in response.headers.get("Vary", "")


def test_cors_preflight_for_another_origin_has_no_allow_headers(client, cors_project):
    response = preflight(client, OTHER)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Headers" not in response.headers


def test_cors_actual_response_follows_the_key_s_project(admin, client, cors_project):
    response = cors_project.client.get("/v1/project", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    response = cors_project.client.get("/v1/project", headers={"Origin": OTHER})
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response.headers
    # The origin belongs to cors_project only: another project's key gets no CORS header for it.
    plain = create_project(admin, client)
    response = plain.client.get("/v1/project", headers={"Origin": ALLOWED})
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response.headers


def test_cors_follows_settings_updates(admin, client, project):
    assert "Access-Control-Allow-Origin" not in project.client.get("/v1/project", headers={"Origin": ALLOWED}).headers
    response = admin.patch(f"/admin/v1/projects/{project.id}", json={"settings": {"cors_origins": [ALLOWED]}})
    assert response.status_code == 200
    response = project.client.get("/v1/project", headers={"Origin": ALLOWED})
    assert response.headers.get("Access-Control-Allow-Origin") == ALLOWED
    assert preflight(client, ALLOWED).headers.get("Access-Control-Allow-Origin") == ALLOWED


def test_cors_origins_from_config_apply_to_every_project(make_app):
    app = make_app({"cors.allowed_origins": [ALLOWED]})
    client = app.test_client()
    from baas.testing import ApiClient, ADMIN_TOKEN

    project = create_project(ApiClient(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}), client)
    response = project.client.get("/v1/project", headers={"Origin": ALLOWED})
    assert response.headers.get("Access-Control-Allow-Origin") == ALLOWED
    assert preflight(client, ALLOWED).headers.get("Access-Control-Allow-Origin") == ALLOWED
    assert "Access-Control-Allow-Origin" not in project.client.get("/v1/project", headers={"Origin": OTHER}).headers


def test_admin_api_sends_no_cors_headers(admin):
    response = admin.get("/admin/v1/projects", headers={"Origin": ALLOWED})
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response.headers


# --- never a traceback ------------------------------------------------------------------------------------------

def test_unexpected_errors_are_500_json_without_details(app, admin, monkeypatch):
    svc = app.extensions["baas"]

    def broken():
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(svc.projects, "list", broken)
    response = admin.get("/admin/v1/projects")
    body = assert_error(response, 500)
    assert b"secret internal detail" not in response.data and b"RuntimeError" not in response.data
    assert response.headers["X-Request-ID"] in body["message"] or "request id" in body["message"].lower()


def test_views_marked_raw_body_take_any_content_type_and_others_stay_json_only(make_app, admin):
    """File uploads will come through views marked with raw_body; every other view keeps refusing non-JSON."""
    from flask.views import MethodView

    from baas.http import raw_body

    application = make_app()

    class Upload(MethodView):
        @raw_body
        def put(self):
            from flask import request
            return {"received": len(request.get_data())}

        def post(self):
            return {"posted": True}

    application.add_url_rule("/admin/v1/test-upload", view_func=Upload.as_view("test_upload"))
    client = application.test_client()
    headers = dict(admin.headers)
    accepted = client.put("/admin/v1/test-upload", data=b"\x89PNG raw bytes", headers={
        **headers, "Content-Type": "image/png"})
    assert accepted.status_code == 200, accepted.data
    assert accepted.get_json() == {"received": 14}
    assert_error(client.post("/admin/v1/test-upload", data=b"raw", headers={**headers, "Content-Type": "image/png"}),
                 415)


def test_generated_request_ids_differ_across_requests_and_forked_workers():
    """granian forks its workers from one process: each must draw its own prefix, or ids would repeat."""
    import os

    from baas.util import RequestIds

    ids = RequestIds()
    first, second = ids.next(), ids.next()
    assert first != second and len(first) == 32
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child writes the id it would give its first request
        os.write(write_end, ids.next().encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.waitpid(pid, 0)
    os.close(read_end)
    assert child_id[:16] != first[:16], (child_id, first)
    assert ids.next()[:16] == first[:16]


def test_finished_bodies_reach_the_server_as_a_list_and_everything_else_as_werkzeug_sends_it():
    from baas.flask_app import BaasResponse

    get, head = {"REQUEST_METHOD": "GET"}, {"REQUEST_METHOD": "HEAD"}
    assert BaasResponse(b'{"a": 1}').get_app_iter(get) == [b'{"a": 1}']
    assert BaasResponse(b'{"a": 1}').get_app_iter(head) == []
    assert BaasResponse(status=204).get_app_iter(get) == []
    assert BaasResponse(b"x", status=304).get_app_iter(get) == []
    streamed = BaasResponse(iter([b"a", b"b"]))
    assert not isinstance(streamed.get_app_iter(get), list)
    assert b"".join(streamed.get_app_iter(get)) == b"ab"
    closed = []
    with_callback = BaasResponse(b"x")
    with_callback.call_on_close(lambda: closed.append(True))
    chunks = with_callback.get_app_iter(get)
    assert not isinstance(chunks, list)  # the server must call close(), so the callback runs
    assert b"".join(chunks) == b"x"
    chunks.close()
    assert closed == [True]


def test_head_of_a_document_has_its_headers_and_no_body(project):
    created = project.server.post("/v1/collections/notes/documents", json={"text": "hi"}).get_json()
    response = project.server.open("HEAD", f"/v1/collections/notes/documents/{created['_id']}")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["ETag"] == f'"{created["_rev"]}"'


def test_every_json_response_writes_dates_in_the_one_format(app):
    """UTC, milliseconds, Z: what the docs promise, whether a view serializes through Flask or orjson directly."""
    from datetime import datetime, timedelta, timezone

    from bson.tz_util import utc as bson_utc

    from baas.documents.api import json_response

    stored = datetime(2024, 5, 1, 10, 30, 0, 123000, tzinfo=bson_utc)  # what pymongo returns
    local = datetime(2024, 5, 1, 12, 30, 0, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2024, 5, 1, 10, 30)
    with app.app_context():
        assert json.loads(app.json.dumps({"a": stored, "b": local, "c": naive})) == {
            "a": "2024-05-01T10:30:00.123Z", "b": "2024-05-01T10:30:00.000Z", "c": "2024-05-01T10:30:00.000Z"}
        assert json.loads(json_response({"a": stored, "b": local}).get_data()) == {
            "a": "2024-05-01T10:30:00.123Z", "b": "2024-05-01T10:30:00.000Z"}


def test_cors_lets_browsers_speak_tus(client, cors_project):
    """What tus-js-client sends and reads in a browser, its PATCH-override and parallel-upload headers included
    (so a refused parallel upload shows the server's 400, not an opaque CORS failure)."""
    response = client.options("/v1/files/tus/", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "tus-resumable,upload-length,upload-metadata,upload-concat,x-api-key"})
    allowed = {name.strip().lower() for name in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"tus-resumable", "upload-length", "upload-offset", "upload-metadata", "upload-checksum", "upload-concat",
            "x-http-method-override", "x-api-key", "content-type"} <= allowed
    response = client.options("/v1/files/tus/", headers={"Origin": ALLOWED, "X-API-Key": cors_project.client_key})
    assert response.status_code == 204
    exposed = {name.strip().lower() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"location", "upload-offset", "upload-length", "upload-expires", "tus-resumable", "tus-version",
            "tus-extension", "tus-max-size", "tus-checksum-algorithm", "baas-file-id"} <= exposed
