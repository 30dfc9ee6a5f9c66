"""Loopback FCM and APNs services: they check credentials as Google and Apple do and answer as told.

FcmEmulator: an OAuth token endpoint that verifies the service account's RS256 assertion and issues access
tokens, and `messages:send` that checks the bearer token and records the message (HTTP/1.1 on loopback).
ApnsEmulator: an HTTP/2 server over TLS (hypercorn, certificate from a test CA) that verifies the ES256
provider JWT against the project's key and records each push with the connection it came on; it can call the
JWTs seen so far expired (`expire_jwts`) or run its clock ahead of ours (`clock_ahead`).
Both count token requests / distinct JWTs, and answer planned errors per device token.
"""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import secrets
import socket
import ssl
import string
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def pem_text(private_key) -> str:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()


@dataclass
class Received:
    token: str
    body: dict
    headers: dict
    connection: tuple | None = None


# --- FCM ------------------------------------------------------------------------------------------------------

class FcmEmulator:
    def __init__(self, count_only: bool = False, tls: tuple[str, str] | None = None):
        """tls: (certificate file, key file) to serve https instead of http."""
        self.accounts: dict[str, dict] = {}     # client_email -> {"public_key", "project_id"}
        self.tokens: dict[str, float] = {}      # access token -> expiry
        self.token_requests = 0
        self.token_seconds = 3600
        self.refuse_tokens = False
        self.received: list[Received] = []
        self.attempts: dict[str, int] = {}
        self.plans: dict[str, list] = {}        # device token -> [(status, errorCode, headers)] then 200
        self.count_only = count_only
        self.count = 0
        self.last_at = 0.0
        self.lock = threading.Lock()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/token":
                    return emulator._token(self, body)
                return emulator._send(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            # the handshake happens in the handler's thread, on its first read
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True,
                                                     do_handshake_on_connect=False)
            scheme = "https"
        self.origin = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def service_account(self, firebase_project: str = "baas-test") -> dict:
        """A new service account this emulator trusts, as the JSON the Firebase console downloads."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        email = f"firebase-adminsdk-{secrets.token_hex(3)}@{firebase_project}.iam.gserviceaccount.com"
        self.accounts[email] = {"public_key": key.public_key(), "project_id": firebase_project}
        return {"type": "service_account", "project_id": firebase_project, "private_key_id": secrets.token_hex(20),
                "private_key": pem_text(key), "client_email": email, "client_id": "1" * 21,
                "token_uri": f"{self.origin}/token"}

    def answer(self, device_token: str, *responses) -> None:
        """The next requests for `device_token` answer these (status, errorCode, headers), then 200."""
        self.plans[device_token] = list(responses)

    def for_token(self, device_token: str) -> list[Received]:
        return [r for r in self.received if r.token == device_token]

    def _token(self, request, body: bytes) -> None:
        with self.lock:
            self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        try:
            assert form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer", "grant_type"
            unverified = jwt.decode(form["assertion"], options={"verify_signature": False})
            account = self.accounts[unverified["iss"]]
            claims = jwt.decode(form["assertion"], account["public_key"], algorithms=["RS256"],
                                audience=f"{self.origin}/token")
            assert claims["exp"] - claims["iat"] <= 3600, "assertion lives over an hour"
            assert "firebase.messaging" in claims["scope"], "scope"
            assert not self.refuse_tokens, "refused"
        except Exception as exc:
            return _reply(request, 400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"})
        token = "ya29." + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.time() + self.token_seconds
        _reply(request, 200, {"access_token": token, "expires_in": self.token_seconds, "token_type": "Bearer"})

    def _send(self, request, body: bytes) -> None:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.tokens.get(bearer, 0) < time.time():
            return _reply(request, 401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                   "message": "Request had invalid authentication credentials."}})
        if self.count_only:
            with self.lock:
                self.count += 1
                self.last_at = time.monotonic()
            return _reply(request, 200, {"name": "projects/x/messages/1"})
        message = json.loads(body)["message"]
        token = message.get("token", "")
        with self.lock:
            self.attempts[token] = self.attempts.get(token, 0) + 1
            plan = self.plans.get(token)
            planned = plan.pop(0) if plan else None
        if planned is not None:
            status, code, headers = planned
            return _reply(request, status, {"error": {
                "code": status, "status": code,
                "message": ("The registration token is not a valid FCM registration token"
                            if code == "INVALID_ARGUMENT" else f"told to fail: {code}"),
                "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}},
                headers)
        with self.lock:
            self.received.append(Received(token, message, dict(request.headers.items())))
        _reply(request, 200, {"name": f"projects/{request.path.split('/')[3]}/messages/{secrets.token_hex(8)}"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _reply(request, status: int, body: dict, headers: dict | None = None) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


# --- APNs -----------------------------------------------------------------------------------------------------

def make_test_ca(folder: Path) -> tuple[str, str, str]:
    """(CA certificate, server certificate, server key) files: a CA that signed a cert for 127.0.0.1."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"baas test CA {secrets.token_hex(4)}")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_text(pem_text(key))
    return tuple(str(p) for p in paths)


def _apple_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10))


class ApnsEmulator:
    def __init__(self, folder: Path, count_only: bool = False, requests_per_connection: int = 10**9):
        from hypercorn.config import Config

        self.ca_file, cert_file, key_file = make_test_ca(folder)
        self.cert_files = (cert_file, key_file)      # for other loopback servers under the same test CA
        self.keys: dict[str, dict] = {}          # key id -> {"public_key", "team_id", "bundle_id"}
        self.jwts: dict[str, set] = {}           # key id -> distinct provider JWTs seen
        self.connections: set[tuple] = set()
        self.received: list[Received] = []
        self.attempts: dict[str, int] = {}
        self.plans: dict[str, list] = {}         # device token -> [(status, reason, headers)] then 200
        self.http_versions: set[str] = set()
        self.expired: set[str] = set()           # provider JWTs answered 403 ExpiredProviderToken from now on
        self.clock_ahead = 0.0                   # seconds Apple's clock runs ahead of ours (a server clock behind)
        self.count_only = count_only
        self.count = 0
        self.last_at = 0.0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.origin = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        config = Config()
        config.bind = [f"fd://{self.sock.fileno()}"]
        config.certfile, config.keyfile = cert_file, key_file
        config.alpn_protocols = ["h2"]
        config.h2_max_concurrent_streams = 1000    # Apple's limit
        # hypercorn closes a connection after 1,000 requests by default; a test may ask for it sooner.
        config.keep_alive_max_requests = requests_per_connection
        config.accesslog = config.errorlog = None
        config.loglevel = "WARNING"
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        from hypercorn.asyncio import serve

        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        started.set()
        self._loop.run_until_complete(serve(self._app, self._config, shutdown_trigger=self._stop.wait))

    def signing_key(self, bundle_id: str = "com.example.baas") -> dict:
        """A new .p8 key this emulator trusts, with the ids `baas push credentials set ... apns` takes."""
        key = ec.generate_private_key(ec.SECP256R1())
        key_id, team_id = _apple_id(), _apple_id()
        self.keys[key_id] = {"public_key": key.public_key(), "team_id": team_id, "bundle_id": bundle_id}
        return {"key": pem_text(key), "key_id": key_id, "team_id": team_id, "bundle_id": bundle_id}

    @staticmethod
    def device_token() -> str:
        return os.urandom(32).hex()

    def answer(self, device_token: str, *responses) -> None:
        """The next requests for `device_token` answer these (status, reason, headers), then 200; a status of
        None leaves that request unanswered."""
        self.plans[device_token] = list(responses)

    def for_token(self, device_token: str) -> list[Received]:
        return [r for r in self.received if r.token == device_token]

    def _verify(self, headers: dict) -> str | None:
        """None when the provider JWT is good, else Apple's reason."""
        authorization = headers.get("authorization", "")
        if not authorization.startswith("bearer "):
            return "MissingProviderToken"
        token = authorization[7:]
        try:
            kid = jwt.get_unverified_header(token)["kid"]
            key = self.keys[kid]
            claims = jwt.decode(token, key["public_key"], algorithms=["ES256"])
        except Exception:
            return "InvalidProviderToken"
        if claims.get("iss") != key["team_id"]:
            return "InvalidProviderToken"
        with self.lock:
            self.jwts.setdefault(kid, set()).add(token)
        if claims.get("iat", 0) < time.time() + self.clock_ahead - 3600 or token in self.expired:
            return "ExpiredProviderToken"
        if headers.get("apns-topic") != key["bundle_id"]:
            return "DeviceTokenNotForTopic"
        return None

    def expire_jwts(self) -> None:
        """Answer ExpiredProviderToken to every provider JWT seen so far (as Apple does to one over an hour old);
        a newly signed one is accepted."""
        with self.lock:
            self.expired.update(token for tokens in self.jwts.values() for token in tokens)

    def jwts_of(self, key_id: str) -> set:
        return self.jwts.get(key_id, set())

    async def _app(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        token = scope["path"].rsplit("/", 1)[-1]
        with self.lock:
            self.http_versions.add(scope["http_version"])
            self.connections.add(tuple(scope.get("client") or ()))
        if self.count_only:
            status, reason, extra = 200, None, {}
            with self.lock:
                self.count += 1
                self.last_at = time.monotonic()
        else:
            with self.lock:
                self.attempts[token] = self.attempts.get(token, 0) + 1
                plan = self.plans.get(token)
                planned = plan.pop(0) if plan else None
            reason = self._verify(headers)
            status, extra = (403 if reason else 200), {}
            if reason == "DeviceTokenNotForTopic":
                status = 400
            if reason is None and planned is not None:
                status, reason, extra = planned
            if status is None:      # planned (None, ...): never answer this stream (until the emulator closes)
                await self._stop.wait()
                return
            if status == 200:
                with self.lock:
                    self.received.append(Received(token, json.loads(body), headers, tuple(scope.get("client") or ())))
        data = json.dumps({"reason": reason}).encode() if reason else b""
        response_headers = [(b"apns-id", secrets.token_hex(16).encode())]
        response_headers += [(k.encode(), str(v).encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": data})

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)
        self.sock.detach()  # hypercorn served the descriptor and closed it
