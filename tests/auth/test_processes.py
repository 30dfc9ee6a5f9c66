"""Two real `baas serve` processes on one database: revocation and rate limits hold across both."""
import requests

from auth_helpers import PASSWORD
from baas.testing import wait_until


def _call(server, method, path, key, token=None, **kwargs):
    headers = {"X-API-Key": key}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, server.url + path, headers=headers, timeout=10, **kwargs)


def test_revoked_access_token_is_refused_by_the_other_process(server_process, project):
    first, second = server_process(), server_process()
    signed_up = _call(first, "POST", "/v1/auth/signup", project.client_key,
                      json={"email": "two@example.com", "password": PASSWORD})
    assert signed_up.status_code == 201, signed_up.text
    token = signed_up.json()["access_token"]
    assert _call(second, "GET", "/v1/auth/me", project.client_key, token).status_code == 200
    assert _call(first, "POST", "/v1/auth/logout", project.client_key, token).status_code == 204
    assert _call(first, "GET", "/v1/auth/me", project.client_key, token).status_code == 401
    def refused_by_second():
        response = _call(second, "GET", "/v1/auth/me", project.client_key, token)
        return [response] if response.status_code == 401 else None  # a 4xx Response is falsy itself

    [refused] = wait_until(refused_by_second, timeout=5, message="the second process to refuse the revoked token")
    assert "revoked" in refused.json()["message"]
    # The session's refresh token is dead on both processes too.
    refresh = signed_up.json()["refresh_token"]
    assert _call(second, "POST", "/v1/auth/refresh", project.client_key, json={"refresh_token": refresh}
                 ).status_code == 401


def test_rate_limits_are_shared_by_two_processes(server_process, project):
    overrides = {"rate_limits.api_per_key": "6/hour", "rate_limits.auth_per_ip": "3/hour"}
    first, second = server_process(overrides), server_process(overrides)
    servers = [first, second]
    # Per-IP auth limit: three log-in attempts spread over both processes use it up.
    statuses = [_call(servers[i % 2], "POST", "/v1/auth/login", project.server_key,
                      json={"email": f"n{i}@example.com", "password": PASSWORD}).status_code for i in range(4)]
    assert statuses == [401, 401, 401, 429]
    # General per-key limit: the client key's six requests, alternating between processes.
    statuses = [_call(servers[i % 2], "GET", "/v1/auth/me", project.client_key).status_code for i in range(7)]
    assert statuses == [401] * 6 + [429]
    limited = _call(first, "GET", "/v1/auth/me", project.client_key)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert _call(second, "GET", "/v1/auth/me", project.client_key).status_code == 429
