"""Mail over SMTP with STARTTLS and with implicit TLS, verifying the server's certificate."""
import datetime
import ipaddress
import ssl

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from auth_helpers import Inbox, signup
from baas.storage.embedded import free_port
from baas.testing import wait_until


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    """A self-signed certificate for 127.0.0.1 that this process (and only this test) trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "baas test SMTP")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    # OpenSSL reads SSL_CERT_FILE when the mailer builds its default context: the system trust store, swapped.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    return server_context


def _mail_a_reset(auth_app, new_project, port, security):
    app, admin, client = auth_app({"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port,
                                   "mail.smtp.security": security, "mail.link_base_url": "https://app.example.com"})
    project = new_project(admin, client)
    signup(project, "tls@example.com")
    assert project.client.post("/v1/auth/password-reset/request", json={"email": "tls@example.com"}).status_code == 202


def test_starttls(auth_app, new_project, certificate):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=certificate, require_starttls=True)
    controller.start()
    try:
        _mail_a_reset(auth_app, new_project, port, "starttls")
        mails = wait_until(lambda: inbox.to("tls@example.com"), message="the reset mail over STARTTLS")
    finally:
        controller.stop()
    assert mails[0]["tls"] is True
    assert "reset" in mails[0]["message"]["Subject"].lower()


def test_implicit_tls(auth_app, new_project, certificate):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=certificate)
    controller.start()
    try:
        _mail_a_reset(auth_app, new_project, port, "ssl")
        mails = wait_until(lambda: inbox.to("tls@example.com"), message="the reset mail over implicit TLS")
    finally:
        controller.stop()
    assert mails[0]["tls"] is True
