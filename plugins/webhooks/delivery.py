"""HTTP delivery that cannot be pointed at the server's own network (SSRF).

The host name is resolved and checked by baas.egress (shared with push delivery), and the connection goes to the
checked address. Redirects are followed by hand, each target checked the same way. Short timeout; at most
MAX_RESPONSE_BYTES of the answer are read.
"""
from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urljoin, urlsplit

from baas.egress import TargetRefused, parse_networks, resolve_public

MAX_REDIRECTS = 3
MAX_RESPONSE_BYTES = 64 * 1024


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address while the certificate is verified for the host name."""

    def __init__(self, host, address, **kwargs):
        super().__init__(host, **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host, address, **kwargs):
        super().__init__(host, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class SafeSender:
    def __init__(self, allow_networks=(), timeout: float = 5.0):
        self.allowed = parse_networks(allow_networks)
        self.timeout = timeout

    def check(self, url: str) -> tuple[str, str, int, str]:
        """(scheme, host, port, address to connect to), or TargetRefused."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetRefused(f"not an http(s) URL: {url[:100]}")
        if parts.username or parts.password:
            raise TargetRefused("URLs with credentials are refused")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.scheme, parts.hostname, port, resolve_public(parts.hostname, port, self.allowed)[0]

    def post(self, url: str, body: bytes, headers: dict) -> int:
        method = "POST"
        for _ in range(MAX_REDIRECTS + 1):
            scheme, host, port, address = self.check(url)
            parts = urlsplit(url)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            if scheme == "https":
                connection = _PinnedHTTPS(host, address, port=port, timeout=self.timeout,
                                          context=ssl.create_default_context())
            else:
                connection = _PinnedHTTP(host, address, port=port, timeout=self.timeout)
            try:
                connection.request(method, path, body=body if method == "POST" else None,
                                   headers={**headers, "Host": parts.netloc.rsplit("@", 1)[-1]})
                response = connection.getresponse()
                response.read(MAX_RESPONSE_BYTES)
                location = response.getheader("Location")
                status = response.status
            finally:
                connection.close()
            if status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                if status == 303:
                    method = "GET"
                continue
            return status
        raise TargetRefused("too many redirects")
