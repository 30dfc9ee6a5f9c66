"""Helpers shared by the auth tests (fixtures are in conftest.py)."""
import email
import re
from email import policy
from pathlib import Path

# Valid argon2id parameters that keep a hash at about a millisecond; production defaults are tested separately.
CHEAP_HASHING = {"auth.argon2_time_cost": 1, "auth.argon2_memory_kib": 1024, "auth.argon2_parallelism": 1}
PASSWORD = "correct horse battery"


class Inbox:
    """An aiosmtpd handler that keeps every received message."""

    def __init__(self):
        self.messages = []
        self.port = None

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": message,
                              # STARTTLS sets session.ssl; implicit TLS shows on the transport.
                              "tls": session.ssl is not None
                              or server.transport.get_extra_info("ssl_object") is not None})
        return "250 Message accepted"

    def to(self, address):
        return [m for m in self.messages if address in m["to"]]


def smtp_config(inbox):
    return {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": inbox.port, "mail.smtp.security": "none",
            "mail.link_base_url": "https://app.example.com"}


def body_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def token_in(text: str, kind: str) -> str:
    prefix = {"verify": "baas_vt_", "reset": "baas_pr_"}[kind]
    match = re.search(r"token=(" + prefix + r"[A-Za-z0-9_\-]+)", text)
    assert match, f"no {kind} token in: {text}"
    return match.group(1)


def outbox_mails(app) -> list:
    folder = Path(app.extensions["baas"].config["data_dir"]) / "outbox"
    if not folder.exists():
        return []
    return [email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in sorted(folder.glob("*.eml"))]


def signup(project, email, password=PASSWORD, **extra):
    return project.client.post("/v1/auth/signup", json={"email": email, "password": password, **extra})


def login(project, email, password=PASSWORD, **kwargs):
    return project.client.post("/v1/auth/login", json={"email": email, "password": password}, **kwargs)
