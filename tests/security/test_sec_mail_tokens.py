"""Verification and reset tokens: single use, one purpose, one project."""
import email
import re
from email import policy
from pathlib import Path

from baas.testing import create_project, wait_until
from security_helpers import assert_error

PASSWORD = "correct horse battery"


def outbox_tokens(app, prefix):
    folder = Path(app.extensions["baas"].config["data_dir"]) / "outbox"
    tokens = []
    for path in sorted(folder.iterdir()) if folder.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        text = message.get_body(preferencelist=("plain",)).get_content()
        tokens += re.findall(r"token=(" + prefix + r"[A-Za-z0-9_\-]+)", text)
    return tokens


def reset_token(app, project, user):
    assert project.client.post("/v1/auth/password-reset/request", json={"email": user.email}).status_code == 202
    wait_until(lambda: outbox_tokens(app, "baas_pr_") or None, timeout=10, message="reset mail")
    return outbox_tokens(app, "baas_pr_")[-1]


def verify_token(app, project, user):
    assert user.post("/v1/auth/verify-email/request").status_code == 202
    wait_until(lambda: outbox_tokens(app, "baas_vt_") or None, timeout=10, message="verify mail")
    return outbox_tokens(app, "baas_vt_")[-1]


def test_reset_token_is_single_use_and_revokes_sessions(app, project, make_user):
    user = make_user(project)
    token = reset_token(app, project, user)
    assert project.client.post("/v1/auth/password-reset/confirm",
                               json={"token": token, "password": "brand new password"}).status_code == 204
    assert_error(project.client.post("/v1/auth/password-reset/confirm",
                                     json={"token": token, "password": "attacker password"}), 400, 401, 404)
    assert_error(user.get("/v1/auth/me"), 401)
    assert_error(project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401)
    assert project.client.post("/v1/auth/login", json={"email": user.email,
                                                       "password": "brand new password"}).status_code == 200


def test_reset_token_of_project_a_is_useless_on_b(app, admin, client, project, make_user):
    user = make_user(project)
    token = reset_token(app, project, user)
    other = create_project(admin, client)
    assert_error(other.client.post("/v1/auth/password-reset/confirm",
                                   json={"token": token, "password": "attacker password"}), 400, 401, 404)
    # still usable where it belongs
    assert project.client.post("/v1/auth/password-reset/confirm",
                               json={"token": token, "password": "brand new password"}).status_code == 204


def test_verify_token_is_not_a_reset_token_and_vice_versa(app, project, make_user):
    user = make_user(project)
    verify = verify_token(app, project, user)
    reset = reset_token(app, project, user)
    assert_error(project.client.post("/v1/auth/password-reset/confirm",
                                     json={"token": verify, "password": "attacker password"}), 400, 401, 404)
    assert_error(project.client.post("/v1/auth/verify-email/confirm", json={"token": reset}), 400, 401, 404)
    assert project.client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 200
    assert user.get("/v1/auth/me").get_json()["email_verified"] is False


def test_tampered_tokens_are_refused(app, project, make_user):
    user = make_user(project)
    token = reset_token(app, project, user)
    for forged in (token[:-1] + ("A" if token[-1] != "A" else "B"), token + "x", token.upper(), "baas_pr_",
                   token[:20]):
        assert_error(project.client.post("/v1/auth/password-reset/confirm",
                                         json={"token": forged, "password": "attacker password"}), 400, 401, 404)
    assert project.client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 200
