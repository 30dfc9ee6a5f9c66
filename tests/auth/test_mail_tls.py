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


def _reset_mail_received(auth_app, new_project, security: str, **server_tls) -> dict:
    """Ask for a password reset through an SMTP server with `server_tls`; return the mail it received."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **server_tls)
    controller.start()
    try:
        app, admin, client = auth_app({"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port,
                                       "mail.smtp.security": security,
                                       "mail.link_base_url": "https://app.example.com"})
        project = new_project(admin, client)
        signup(project, "tls@example.com")
        response = project.client.post("/v1/auth/password-reset/request", json={"email": "tls@example.com"})
        assert response.status_code == 202
        return wait_until(lambda: inbox.to("tls@example.com"), message=f"the reset mail over {security}")[0]
    finally:
        controller.stop()


def test_starttls(auth_app, new_project, certificate):
    mail = _reset_mail_received(auth_app, new_project, "starttls", tls_context=certificate, require_starttls=True)
    assert mail["tls"] is True
    assert "reset" in mail["message"]["Subject"].lower()


def test_implicit_tls(auth_app, new_project, certificate):
    mail = _reset_mail_received(auth_app, new_project, "ssl", ssl_context=certificate)
    assert mail["tls"] is True
