"""A live `baas serve` (module scope) with a project, its keys and a signed-in user, for the contract checks."""
import base64
import json
import secrets

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from baas.testing import ADMIN_TOKEN, ServerProcess, servers_config, with_overrides


@pytest.fixture(scope="module")
def live(mongo_uri, s3_settings, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract")
    config = with_overrides(servers_config(mongo_uri, s3_settings, tmp / "data"),
                            {"rate_limits.enabled": False, "logging.level": "WARNING",
                             "push.allow_http_hosts": ["127.0.0.1"]})
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

    def resources(self) -> dict:
        """Things the fuzzed operations can find (path parameters to pin): a file, a tus upload, a push message.
        File settings start from known values each run (an earlier run fuzzed them)."""
        self.reset_file_settings()
        server = {"X-API-Key": self.server_key}
        response = requests.post(self.url + "/v1/files?name=pinned.txt", data=b"pinned by the contract tests",
                                 headers={**server, "Content-Type": "text/plain"}, timeout=30)
        assert response.status_code == 201, response.text
        file_id = response.json()["_id"]
        response = requests.post(self.url + "/v1/files/tus/", headers={**server, "Tus-Resumable": "1.0.0",
                                                                       "Upload-Length": "64"}, timeout=30)
        assert response.status_code == 201, response.text
        message = self._post("/v1/push/messages", {"audience": {"all": True}, "notification": {"title": "pinned"}},
                             server)
        return {"file_id": file_id, "upload_id": response.headers["Location"].rsplit("/", 1)[1],
                "message_id": message["id"]}

    def reset_file_settings(self) -> None:
        """Settings an upload can pass, and file rules a signed-in user can work under."""
        response = requests.patch(self.url + "/v1/files/settings", data=json.dumps({
            "max_file_bytes": 1024 * 1024, "allowed_types": None, "presigned_downloads": False,
            "rules": {"list": "authenticated", "read": "authenticated", "create": "authenticated",
                      "update": "owner", "delete": "owner"}}),
            headers={"X-API-Key": self.server_key, "Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 200, response.text

    def subscribe(self, token: str) -> str:
        """A push subscription of the user with `token`, to a port where nothing listens: nothing is delivered.

        On 127.0.0.1 (allowed plain http here): a name that does not resolve is refused at subscribe (SSRF check)."""
        point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        body = {"endpoint": "http://127.0.0.1:9/contract/" + secrets.token_hex(8),
                "keys": {"p256dh": _b64url(point), "auth": _b64url(secrets.token_bytes(16))}}
        return self._post("/v1/push/subscriptions", body, {"X-API-Key": self.client_key,
                                                           "Authorization": f"Bearer {token}"})["id"]

    def sign_up(self) -> str:
        body = self._post("/v1/auth/signup", {"email": f"u{secrets.token_hex(4)}@example.com",
                                              "password": "correct horse battery"},
                          {"X-API-Key": self.client_key})
        return body["access_token"]

    def _post(self, path, body, headers):
        response = requests.post(self.url + path, data=json.dumps(body),
                                 headers={**headers, "Content-Type": "application/json"}, timeout=30)
        assert response.status_code in (200, 201, 202), response.text
        return response.json()

    def _put(self, path, body, headers):
        response = requests.put(self.url + path, data=json.dumps(body),
                                headers={**headers, "Content-Type": "application/json"}, timeout=30)
        assert response.status_code in (200, 201), response.text
        return response.json()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
