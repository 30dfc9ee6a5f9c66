"""A live `baas serve` (module scope) with a project, its keys and a signed-in user, for the contract checks."""
import json
import secrets

import pytest
import requests

from baas.testing import ADMIN_TOKEN, ServerProcess, servers_config, with_overrides


@pytest.fixture(scope="module")
def live(mongo_uri, s3_settings, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract")
    config = with_overrides(servers_config(mongo_uri, s3_settings, tmp / "data"),
                            {"rate_limits.enabled": False, "logging.level": "WARNING"})
    server = ServerProcess(config, tmp).start()
    try:
        yield LiveServer(server.url)
    finally:
        server.stop()


class LiveServer:
    def __init__(self, url: str):
        self.url = url
        self.admin_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        self.project_id = "contract-" + secrets.token_hex(3)
        self._post("/admin/v1/projects", {"id": self.project_id, "name": "Contract"}, self.admin_headers)
        self.client_key = self._post(f"/admin/v1/projects/{self.project_id}/keys", {"kind": "client"},
                                     self.admin_headers)["key"]
        self.server_key = self._post(f"/admin/v1/projects/{self.project_id}/keys", {"kind": "server"},
                                     self.admin_headers)["key"]
        self._put(f"/v1/collections/notes", {"rules": {"list": "authenticated", "read": "authenticated",
                                                        "create": "authenticated", "update": "owner",
                                                        "delete": "owner", "aggregate": "authenticated"}},
                  {"X-API-Key": self.server_key})

    def sign_up(self) -> str:
        body = self._post("/v1/auth/signup", {"email": f"u{secrets.token_hex(4)}@example.com",
                                              "password": "correct horse battery"},
                          {"X-API-Key": self.client_key})
        return body["access_token"]

    def _post(self, path, body, headers):
        response = requests.post(self.url + path, data=json.dumps(body),
                                 headers={**headers, "Content-Type": "application/json"}, timeout=30)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def _put(self, path, body, headers):
        response = requests.put(self.url + path, data=json.dumps(body),
                                headers={**headers, "Content-Type": "application/json"}, timeout=30)
        assert response.status_code in (200, 201), response.text
        return response.json()
