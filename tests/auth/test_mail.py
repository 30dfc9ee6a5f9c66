"""Verification and reset mails over real SMTP (aiosmtpd), templates, and the outbox fallback."""
from datetime import datetime, timedelta, timezone

import pytest

from auth_helpers import Inbox, body_of, login, outbox_mails, signup, smtp_config, token_in
from baas.testing import wait_until


def test_verification_mail_over_smtp(auth_app, new_project, smtp_inbox, make_user):
    app, admin, client = auth_app(smtp_config(smtp_inbox))
    project = new_project(admin, client)
    user = make_user(project)
    assert user.get("/v1/auth/me").get_json()["email_verified"] is False
    response = user.post("/v1/auth/verify-email/request")
    assert response.status_code == 202
    mails = wait_until(lambda: smtp_inbox.to(user.email), message="the verification mail")
    message = mails[0]["message"]
    assert message["Subject"] == f"Confirm your email address for {project.id}"
    assert mails[0]["from"] == "no-reply@localhost"
    text = body_of(message)
    assert "https://app.example.com/verify-email?token=" in text and f"project={project.id}" in text
    token = token_in(text, "verify")
    assert outbox_mails(app) == [], "with SMTP configured nothing goes to the outbox"
    confirmed = project.client.post("/v1/auth/verify-email/confirm", json={"token": token})
    assert confirmed.status_code == 200 and confirmed.get_json()["user"]["email_verified"] is True
    again = project.client.post("/v1/auth/verify-email/confirm", json={"token": token})
    assert again.status_code == 400 and "already used" in again.get_json()["message"]
    forged = project.client.post("/v1/auth/verify-email/confirm", json={"token": "baas_vt_" + "A" * 43})
    assert forged.status_code == 400


def test_verification_request_by_email_does_not_enumerate(auth_app, new_project, smtp_inbox):
    app, admin, client = auth_app(smtp_config(smtp_inbox))
    project = new_project(admin, client, settings={"auth": {"require_verified_email": True}})
    assert signup(project, "vera@example.com").status_code == 201
    wait_until(lambda: smtp_inbox.to("vera@example.com"), message="the sign-up mail")
    known = project.client.post("/v1/auth/verify-email/request", json={"email": "vera@example.com"})
    unknown = project.client.post("/v1/auth/verify-email/request", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()
    mails = wait_until(lambda: len(smtp_inbox.to("vera@example.com")) == 2 and smtp_inbox.to("vera@example.com"),
                       message="the second verification mail")
    first, second = (token_in(body_of(m["message"]), "verify") for m in mails)
    # Only the newest link works.
    assert project.client.post("/v1/auth/verify-email/confirm", json={"token": first}).status_code == 400
    assert project.client.post("/v1/auth/verify-email/confirm", json={"token": second}).status_code == 200
    assert smtp_inbox.to("nobody@example.com") == []
    assert project.client.post("/v1/auth/verify-email/request", json={}).status_code == 400


def test_password_reset_over_smtp(app, auth_app, new_project, smtp_inbox, make_user):
    app, admin, client = auth_app(smtp_config(smtp_inbox))
    project = new_project(admin, client)
    user = make_user(project)
    known = project.client.post("/v1/auth/password-reset/request", json={"email": user.email.upper()})
    unknown = project.client.post("/v1/auth/password-reset/request", json={"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()
    mails = wait_until(lambda: smtp_inbox.to(user.email), message="the reset mail")
    assert mails[0]["message"]["Subject"] == f"Reset your password for {project.id}"
    token = token_in(body_of(mails[0]["message"]), "reset")
    weak = project.client.post("/v1/auth/password-reset/confirm", json={"token": token, "password": "short"})
    assert weak.status_code == 400, "a weak password does not use up the token"
    done = project.client.post("/v1/auth/password-reset/confirm", json={"token": token, "password": "a new secret!"})
    assert done.status_code == 204
    assert user.get("/v1/auth/me").status_code == 401, "a reset signs out every session"
    assert project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}).status_code == 401
    assert login(project, user.email).status_code == 401
    relogged = login(project, user.email, "a new secret!")
    assert relogged.status_code == 200 and relogged.get_json()["user"]["email_verified"] is True
    reused = project.client.post("/v1/auth/password-reset/confirm", json={"token": token, "password": "another one!"})
    assert reused.status_code == 400
    assert smtp_inbox.to("ghost@example.com") == []


def test_expired_reset_token_is_refused(auth_app, new_project, smtp_inbox, make_user):
    app, admin, client = auth_app(smtp_config(smtp_inbox))
    project = new_project(admin, client)
    user = make_user(project)
    project.client.post("/v1/auth/password-reset/request", json={"email": user.email})
    token = token_in(body_of(wait_until(lambda: smtp_inbox.to(user.email))[0]["message"]), "reset")
    tokens = app.extensions["baas"].mongo.project_db(project.id)["_user_tokens"]
    stored = tokens.find_one({"kind": "reset"})
    assert stored["expires_at"] - datetime.now(timezone.utc) <= timedelta(hours=1)
    stored["expires_at"] = datetime.now(timezone.utc) - timedelta(seconds=1)
    tokens.replace_one({"_id": stored["_id"]}, stored)
    response = project.client.post("/v1/auth/password-reset/confirm", json={"token": token, "password": "new secret!!"})
    assert response.status_code == 400 and "expired" in response.get_json()["message"]
    assert login(project, user.email).status_code == 200


def test_project_mail_templates(auth_app, new_project, smtp_inbox, make_user):
    app, admin, client = auth_app(smtp_config(smtp_inbox))
    mail = {"sender": "Shop <hello@shop.example>", "link_base_url": "https://shop.example/account",
            "reset_subject": "New password for {{email}}\r\nBcc: victim@example.com",
            "reset_body": "Hi! Go to {{link}} within {{hours}}h. {{unknown}}"}
    project = new_project(admin, client, settings={"auth": {"mail": mail}})
    user = make_user(project)
    project.client.post("/v1/auth/password-reset/request", json={"email": user.email})
    received = wait_until(lambda: smtp_inbox.to(user.email), message="the templated mail")[0]
    message = received["message"]
    assert received["from"] == "hello@shop.example" and received["to"] == [user.email]
    assert message["Subject"] == f"New password for {user.email} Bcc: victim@example.com"
    assert message["Bcc"] is None
    text = body_of(message)
    assert text.startswith("Hi! Go to https://shop.example/account/reset-password?token=baas_pr_")
    assert "within 1h. {{unknown}}" in text
    bad = admin.patch(f"/admin/v1/projects/{project.id}",
                      json={"settings": {"auth": {"mail": {"link_base_url": "javascript:alert(1)"}}}})
    assert bad.status_code == 422


def test_outbox_when_no_smtp_is_configured(app, project, make_user):
    user = make_user(project)
    assert project.client.post("/v1/auth/password-reset/request", json={"email": user.email}).status_code == 202
    mails = wait_until(lambda: outbox_mails(app), message="the mail in the outbox")
    assert mails[0]["To"] == user.email
    token = token_in(body_of(mails[0]), "reset")
    response = project.client.post("/v1/auth/password-reset/confirm",
                                   json={"token": token, "password": "from the outbox"})
    assert response.status_code == 204
    assert login(project, user.email, "from the outbox").status_code == 200


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_with_credentials(auth_app, new_project, make_user):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from baas.storage.embedded import free_port

    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.login == b"mailer" and auth_data.password == b"s3cret")

    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port, authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        app, admin, client = auth_app({**smtp_config(inbox), "mail.smtp.username": "mailer",
                                       "mail.smtp.password": "s3cret"})
        project = new_project(admin, client)
        user = make_user(project)
        project.client.post("/v1/auth/password-reset/request", json={"email": user.email})
        wait_until(lambda: inbox.to(user.email), message="the mail sent with SMTP credentials")
        assert logins == [(b"mailer", b"s3cret")]
    finally:
        controller.stop()



def test_mail_logs_mask_addresses():
    from baas.mail import masked

    assert masked("ada.lovelace@example.com") == "a***@example.com"
    assert "lovelace" not in masked("ada.lovelace@example.com")
    assert masked("not-an-address") == "***"
