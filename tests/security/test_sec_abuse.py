"""Abuse limits cannot be dodged by spoofed client addresses or spellings of the same email."""
from security_helpers import assert_error


def test_spoofed_forwarded_for_does_not_reset_the_ip_limit(project):
    statuses = []
    for attempt in range(15):
        response = project.client.post("/v1/auth/login", json={"email": f"n{attempt}@example.com",
                                                               "password": "wrong password"},
                                       headers={"X-Forwarded-For": f"10.0.0.{attempt}"})
        statuses.append(response.status_code)
    assert 429 in statuses, statuses
    limited = project.client.post("/v1/auth/login", json={"email": "z@example.com", "password": "wrong password"},
                                  headers={"X-Forwarded-For": "10.9.9.9"})
    body = assert_error(limited, 429)
    assert limited.headers.get("Retry-After")
    assert body["code"] == 429


def test_email_spellings_share_one_account_limit(project, make_user):
    user = make_user(project)
    local, domain = user.email.split("@")
    spellings = [user.email.upper(), " " + user.email, user.email + " ", local.title() + "@" + domain.upper()]
    statuses = []
    for attempt in range(14):
        email = spellings[attempt % len(spellings)]
        response = project.client.post("/v1/auth/login", json={"email": email, "password": "wrong password"},
                                       environ_base={"REMOTE_ADDR": f"10.1.0.{attempt}"})
        statuses.append(response.status_code)
    assert 429 in statuses, statuses
    # the right password from a fresh address is still refused while the account is limited/locked
    response = project.client.post("/v1/auth/login", json={"email": user.email, "password": "correct horse battery"},
                                   environ_base={"REMOTE_ADDR": "10.2.0.1"})
    assert_error(response, 429)
