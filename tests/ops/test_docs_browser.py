"""/docs renders Swagger UI in a real headless chromium without loading anything from the internet."""
from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture
def live_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def test_docs_render_every_operation_from_local_assets(live_url, client):
    from playwright.sync_api import sync_playwright

    methods = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
    operations = sum(len([m for m in item if m in methods])
                     for item in client.get("/openapi.json").get_json()["paths"].values())
    hosts = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda req: hosts.append(urlsplit(req.url).hostname))
            page.goto(live_url + "/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            rendered = page.locator(".opblock").count()
            summary_text = page.locator(".opblock-summary-path").all_inner_texts()
        finally:
            browser.close()
    assert rendered == operations
    assert "/metrics" in summary_text and "/v1/collections/{name}/documents" in summary_text
    assert hosts and set(hosts) == {"127.0.0.1"}, set(hosts)


def test_docs_assets_refuse_path_tricks(client):
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200
    for path in ("/docs/static/../__init__.py", "/docs/static/%2e%2e/__init__.py"):
        assert client.get(path).status_code == 404, path
    # werkzeug first redirects a doubled slash to the merged path, which serves nothing either.
    doubled = client.get("/docs/static//etc/passwd", follow_redirects=True)
    assert doubled.status_code == 404 and b"root:" not in doubled.data


def test_docs_page_sends_nothing_to_third_parties(client):
    page = client.get("/docs").get_data(as_text=True)
    # Off localhost, Swagger UI would load a badge from validator.swagger.io unless told not to.
    assert '"validatorUrl":null' in page.replace(' ', '')
    assert "http://" not in page and "https://" not in page
