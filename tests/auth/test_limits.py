"""Rate limits per IP, per account and per key; account lockout; client IP behind proxies."""
import pytest

from auth_helpers import login, signup
from baas.config import ConfigError, from_mapping
from baas.ratelimit import client_ip


def test_per_ip_limit_answers_429_with_retry_after(auth_app, new_project):
    app, admin, client = auth_app({"rate_limits.auth_per_ip": "3/hour", "rate_limits.auth_per_account": "100/minute"})
    project = new_project(admin, client)
    signup(project, "a@example.com")
    statuses = [login(project, f"x{i}@example.com").status_code for i in range(3)]
    assert statuses == [401, 401, 401]
    limited = login(project, "a@example.com")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600
    assert limited.get_json()["code"] == 429 and "3/hour" in limited.get_json()["message"]
    # Another address is counted apart; other actions too.
    other_ip = login(project, "a@example.com", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other_ip.status_code == 200
    assert project.client.post("/v1/auth/password-reset/request", json={"email": "a@example.com"}).status_code == 202


def test_per_account_limit_holds_across_addresses(auth_app, new_project):
    app, admin, client = auth_app({"rate_limits.auth_per_ip": "100/minute", "rate_limits.auth_per_account": "2/hour",
                                   "server.trusted_proxies": 1})
    project = new_project(admin, client)
    for i in range(2):
        response = project.client.post("/v1/auth/password-reset/request", json={"email": "target@example.com"},
                                       headers={"X-Forwarded-For": f"203.0.113.{i}"})
        assert response.status_code == 202
    limited = project.client.post("/v1/auth/password-reset/request", json={"email": "TARGET@example.com"},
                                  headers={"X-Forwarded-For": "203.0.113.77"})
    assert limited.status_code == 429 and "this account" in limited.get_json()["message"]


def test_forwarded_for_is_ignored_without_trusted_proxies(auth_app, new_project):
    app, admin, client = auth_app({"rate_limits.auth_per_ip": "2/hour", "rate_limits.auth_per_account": "100/minute"})
    project = new_project(admin, client)
    statuses = [project.client.post("/v1/auth/anonymous", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                for i in range(3)]
    assert statuses == [201, 201, 429], "a client cannot dodge the limit by inventing X-Forwarded-For"


def test_client_ip_with_proxies():
    assert client_ip("10.0.0.1", "1.1.1.1, 2.2.2.2", 0) == "10.0.0.1"
    assert client_ip("10.0.0.1", "1.1.1.1, 2.2.2.2", 1) == "2.2.2.2"
    assert client_ip("10.0.0.1", "spoofed, 1.1.1.1, 2.2.2.2", 2) == "1.1.1.1"
    assert client_ip("10.0.0.1", "2.2.2.2", 2) == "10.0.0.1"
    assert client_ip(None, None, 0) == "unknown"


def test_signup_and_refresh_are_limited(auth_app, new_project):
    app, admin, client = auth_app({"rate_limits.auth_per_ip": "2/hour", "rate_limits.auth_per_account": "100/minute"})
    project = new_project(admin, client)
    assert [signup(project, f"s{i}@example.com").status_code for i in range(3)] == [201, 201, 429]
    token = "baas_rt_" + "x" * 43
    statuses = [project.client.post("/v1/auth/refresh", json={"refresh_token": token}).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    statuses = [project.client.post("/v1/auth/verify-email/confirm", json={"token": "baas_vt_" + "x" * 43}).status_code
                for _ in range(3)]
    assert statuses == [400, 400, 429]


def test_lockout_after_failed_logins(auth_app, new_project):
    app, admin, client = auth_app({"rate_limits.lockout_attempts": 3, "rate_limits.auth_per_ip": "100/minute",
                                   "rate_limits.auth_per_account": "100/minute"})
    project = new_project(admin, client)
    signup(project, "locked@example.com")
    signup(project, "free@example.com")
    for _ in range(3):
        assert login(project, "locked@example.com", "wrong password").status_code == 401
    refused = login(project, "locked@example.com")
    assert refused.status_code == 429, "even the right password waits out the lock"
    assert "locked" in refused.get_json()["message"]
    assert 14 * 60 <= int(refused.headers["Retry-After"]) <= 15 * 60 + 1
    assert login(project, "free@example.com").status_code == 200, "other accounts are not affected"
    # Unknown addresses lock the same way, so the lock reveals nothing about which accounts exist.
    for _ in range(3):
        login(project, "ghost@example.com", "wrong password")
    assert login(project, "ghost@example.com").status_code == 429


def test_successful_login_resets_the_failure_count(auth_app, new_project):
    app, admin, client = auth_app({"rate_limits.lockout_attempts": 3, "rate_limits.auth_per_ip": "100/minute",
                                   "rate_limits.auth_per_account": "100/minute"})
    project = new_project(admin, client)
    signup(project, "a@example.com")
    for _ in range(2):
        login(project, "a@example.com", "wrong password")
    assert login(project, "a@example.com").status_code == 200
    for _ in range(2):
        login(project, "a@example.com", "wrong password")
    assert login(project, "a@example.com").status_code == 200


def test_limits_can_be_switched_off(auth_app, new_project):
    app, admin, client = auth_app({"rate_limits.enabled": False, "rate_limits.auth_per_ip": "1/hour",
                                   "rate_limits.lockout_attempts": 1})
    project = new_project(admin, client)
    signup(project, "a@example.com")
    for _ in range(3):
        assert login(project, "a@example.com", "wrong password").status_code == 401
    assert login(project, "a@example.com").status_code == 200


def test_general_per_key_limit(auth_app, new_project):
    app, admin, client = auth_app({"rate_limits.api_per_key": "3/hour"})
    project = new_project(admin, client)
    statuses = [project.client.get("/v1/auth/me").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert "Retry-After" in project.client.get("/v1/auth/me").headers
    assert project.server.get("/v1/users").status_code == 200, "each key has its own budget"


@pytest.mark.parametrize("value", ["lots", "10/fortnight", "", "-1/minute"])
def test_bad_rate_strings_are_config_errors(value):
    with pytest.raises(ConfigError, match="rate_limits.auth_per_ip"):
        from_mapping({"rate_limits": {"auth_per_ip": value}})


def test_auth_config_is_checked():
    with pytest.raises(ConfigError, match="revocation_cache_seconds"):
        from_mapping({"auth": {"revocation_cache_seconds": 30}})
    with pytest.raises(ConfigError, match="algorithm"):
        from_mapping({"jwt": {"algorithm": "none"}})
    with pytest.raises(ConfigError, match="link_base_url"):
        from_mapping({"mail": {"link_base_url": "ftp://x"}})
    assert from_mapping({"rate_limits": {"auth_per_ip": "100 per hour"}})["rate_limits"]["auth_per_ip"]


def test_high_per_key_limits_are_counted_in_batches_shared_by_processes(auth_app, new_project):
    # 300/hour flushes every 3 hits per process: two apps (two processes' worth of limiters) share one budget,
    # overshooting by at most processes x batch.
    first_app, admin, first_client = auth_app({"rate_limits.api_per_key": "300/hour"})
    second_app, _, second_client = auth_app({"rate_limits.api_per_key": "300/hour"})
    project = new_project(admin, first_client)
    clients = [first_client, second_client]
    allowed = 0
    for i in range(400):
        response = clients[i % 2].get("/v1/auth/me", headers={"X-API-Key": project.client_key})
        if response.status_code == 429:
            break
        allowed += 1
    assert 300 - 2 * 3 <= allowed <= 300 + 2 * 3, allowed
    counters = list(first_app.extensions["baas"].mongo.platform["rate_limits"].find({"_id": {"$regex": "^key:"}}))
    assert counters and counters[0]["count"] >= 300 - 2 * 3


def test_a_refresh_refused_by_the_limit_does_not_spend_the_token(auth_app, new_project):
    app, admin, client = auth_app({"rate_limits.auth_per_ip": "100/minute", "rate_limits.auth_per_account": "1/hour"})
    project = new_project(admin, client)
    first = signup(project, "a@example.com").get_json()["refresh_token"]
    second = project.client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert second.status_code == 200
    token = second.get_json()["refresh_token"]
    limited = project.client.post("/v1/auth/refresh", json={"refresh_token": token})
    assert limited.status_code == 429
    from baas.util import sha256_hex

    stored = app.extensions["baas"].mongo.project_db(project.id)["_refresh_tokens"].find_one({"_id": sha256_hex(token)})
    assert stored is not None and stored["used"] is False, "a 429 must leave the token usable for the retry"
    sessions = app.extensions["baas"].mongo.project_db(project.id)["_sessions"]
    assert sessions.count_documents({"revoked": True}) == 0
