"""What a newcomer meets first: the outbox mail as a file, its log line, its wording, and the hint after a reset."""
import logging
from pathlib import Path

from auth_helpers import body_of, login, outbox_mails, token_in
from baas.testing import wait_until


def _newest_outbox_file(app) -> Path:
    folder = Path(app.extensions["baas"].config["data_dir"]) / "outbox"
    return sorted(folder.glob("*.eml"))[-1]


def test_outbox_mail_keeps_its_link_copyable_and_logs_one_masked_line(app, project, make_user, caplog):
    user = make_user(project)
    with caplog.at_level(logging.INFO, logger="baas.mail"):
        assert project.client.post("/v1/auth/password-reset/request", json={"email": user.email}).status_code == 202
        mails = wait_until(lambda: outbox_mails(app), message="the mail in the outbox")
        lines = wait_until(lambda: [r.getMessage() for r in caplog.records if r.name == "baas.mail"],
                           message="the mail's log line")
    raw = _newest_outbox_file(app).read_text()
    token = token_in(body_of(mails[0]), "reset")
    link_line = next(line for line in raw.splitlines() if "token=" in line)
    # The link is in the file exactly as sent: one line, no quoted-printable '=3D' or soft breaks.
    assert f"token={token}" in link_line and "=3D" not in raw and not link_line.endswith("=")
    assert "Content-Transfer-Encoding: quoted-printable" not in raw
    assert "expires in 1 hour." in body_of(mails[0]) and "1 hours" not in body_of(mails[0])
    assert len(lines) == 1 and "outbox" in lines[0]
    local, domain = user.email.split("@")
    assert user.email not in lines[0] and f"{local[0]}***@{domain}" in lines[0]


def test_verification_mail_says_hours_in_the_plural(app, project, make_user):
    user = make_user(project)
    assert user.post("/v1/auth/verify-email/request").status_code == 202
    mails = wait_until(lambda: outbox_mails(app), message="the verification mail")
    assert "expires in 24 hours." in body_of(mails[0])


def test_after_a_password_reset_the_old_token_tells_to_log_in_again(app, project, make_user):
    user = make_user(project)
    assert project.client.post("/v1/auth/password-reset/request", json={"email": user.email}).status_code == 202
    token = token_in(body_of(wait_until(lambda: outbox_mails(app), message="the reset mail")[0]), "reset")
    assert project.client.post("/v1/auth/password-reset/confirm",
                               json={"token": token, "password": "a brand new passphrase"}).status_code == 204
    refused = user.get("/v1/auth/me")
    assert refused.status_code == 401
    hint = refused.get_json()["message"]
    assert "log in again" in hint and "/v1/auth/refresh" not in hint
    # The hint is true: refreshing does not help, logging in does.
    assert project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}).status_code == 401
    assert login(project, user.email, "a brand new passphrase").status_code == 200


def test_logging_level_applies_to_baas_loggers(make_app):
    before = logging.getLogger("baas").level
    try:
        make_app({"logging.level": "WARNING"})
        assert logging.getLogger("baas.mail").getEffectiveLevel() == logging.WARNING
        make_app({"logging.level": "DEBUG"})
        assert logging.getLogger("baas.mail").getEffectiveLevel() == logging.DEBUG
    finally:
        logging.getLogger("baas").setLevel(before)
