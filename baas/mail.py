"""Outgoing mail: SMTP when configured, otherwise an outbox folder under data_dir (and a log line).

Mails are sent from a small background pool so a request never waits on (or reveals through its timing) an
SMTP conversation: password-reset requests for unknown addresses must look exactly like known ones.
"""
from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from baas.util import new_id

log = logging.getLogger("baas.mail")

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def render(template: str, values: dict) -> str:
    """Replace {{name}} placeholders; unknown names are left as written (no format-string tricks possible)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def masked(address: str) -> str:
    """An address fit for logs: enough to tell mails apart, not enough to collect users' addresses."""
    local, _, domain = str(address).rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"


def one_line(text: str) -> str:
    """Header values never carry line breaks (header injection)."""
    return " ".join(text.split())


class Mailer:
    def __init__(self, smtp: dict, outbox: Path, default_sender: str, workers: int = 2):
        self.smtp = dict(smtp)
        self.outbox = Path(outbox)
        self.default_sender = default_sender
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="baas-mail")
        # One thread, so background work runs in the order it was asked for (the newest reset link wins).
        self._ordered = ThreadPoolExecutor(max_workers=1, thread_name_prefix="baas-mail-work")

    @classmethod
    def from_config(cls, config: dict) -> "Mailer":
        return cls(config["mail"]["smtp"], Path(config["data_dir"]).expanduser() / "outbox",
                   config["mail"]["sender"])

    @property
    def uses_smtp(self) -> bool:
        return bool(self.smtp.get("host"))

    def build(self, to: str, subject: str, body: str, sender: str | None = None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = one_line(sender or self.default_sender)
        message["To"] = one_line(to)
        message["Subject"] = one_line(subject)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain="baas.local")
        # 7bit/8bit keep every line as written: quoted-printable would fold long lines and write '=' as '=3D',
        # breaking the links people copy out of outbox files. Lines stay far below SMTP's 998-character limit.
        message.set_content(body, cte="7bit" if body.isascii() else "8bit")
        return message

    def send(self, to: str, subject: str, body: str, sender: str | None = None):
        """Queue one mail; returns a Future (tests may wait on it, requests do not)."""
        message = self.build(to, subject, body, sender)
        return self._pool.submit(self._deliver, message)

    def in_background(self, work, *args):
        """Run `work(*args)` off the request, in submission order; failures are logged. Returns a Future."""
        def logged():
            try:
                return work(*args)
            except Exception:
                log.exception("background mail work %s failed", getattr(work, "__name__", work))
                raise

        return self._ordered.submit(logged)

    def _deliver(self, message: EmailMessage) -> None:
        try:
            if self.uses_smtp:
                self._send_smtp(message)
                log.info("mail %s '%s' sent to %s", message["Message-ID"], message["Subject"], masked(message["To"]))
            else:
                path = self._write_outbox(message)
                log.info("no SMTP configured: mail '%s' to %s written to %s", message["Subject"],
                         masked(message["To"]), path)
        except Exception:
            log.exception("could not deliver mail %s to %s", message["Message-ID"], masked(message["To"]))
            raise

    def _send_smtp(self, message: EmailMessage) -> None:
        host, port = self.smtp["host"], self.smtp["port"]
        timeout = self.smtp.get("timeout_seconds", 10)
        security = self.smtp.get("security", "starttls")
        context = ssl.create_default_context()
        if security == "ssl":
            connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            connection = smtplib.SMTP(host, port, timeout=timeout)
        with connection:
            if security == "starttls":
                connection.starttls(context=context)
            if self.smtp.get("username"):
                connection.login(self.smtp["username"], self.smtp.get("password") or "")
            connection.send_message(message)

    def _write_outbox(self, message: EmailMessage) -> Path:
        self.outbox.mkdir(parents=True, exist_ok=True, mode=0o700)  # exist_ok makes concurrent senders safe
        # Named so that a directory listing is in sending order.
        path = self.outbox / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{time.time_ns() % 10**9:09d}-" \
                             f"{new_id(nbytes=4)}.eml"
        # Written aside and renamed, so whoever watches the folder never reads a half-written mail.
        partial = path.with_suffix(".eml.part")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # mails carry single-use tokens
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(bytes(message))
        os.replace(partial, path)
        return path

    def close(self) -> None:
        self._ordered.shutdown(wait=True)  # first: its work may still queue mails
        self._pool.shutdown(wait=True)
