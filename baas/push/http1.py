"""A small HTTP/1.1 client for one job: POST a push message to a push service over a kept-alive connection.

Why not urllib3/requests/httpx/h11: measured against a loopback receiver, one POST costs ~250 us of CPU through
urllib3, ~180 us through http.client or h11 and ~600 us through httpx, against ~40 us here; at thousands of
deliveries per second that is most of a core. A push request is always the same shape (POST, a few headers
prepared once per message, a body under 4 KB, a small answer), so the client only has to get that shape right:
status line, headers, a body by Content-Length or chunked or until close, 1xx skipped, bounded sizes, timeouts,
keep-alive unless the server says otherwise.

Connections go to an address that baas.egress checked (never a fresh DNS answer), with TLS verified for the host
name.
"""
from __future__ import annotations

import select
import socket
import ssl
import threading
from dataclasses import dataclass

MAX_LINE = 16 * 1024
MAX_HEADERS = 100
MAX_BODY = 64 * 1024        # push services answer with a short reason; anything longer is cut and the connection closed


class ProtocolError(OSError):
    """The push service's answer is not HTTP/1.1 we can read; the connection is dropped."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict          # lower-case names
    body: bytes


class _Connection:
    __slots__ = ("sock", "reader")

    def __init__(self, sock):
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=65536)

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()

    def dropped(self) -> bool:
        """An idle connection the server has closed (or sent something unasked) must not carry a request."""
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True


class HostPool:
    """Kept-alive connections to one push-service origin, all to one checked address."""

    def __init__(self, scheme: str, host: str, port: int, address: str, timeout: float, max_idle: int,
                 tls: ssl.SSLContext | None):
        self.scheme, self.host, self.port, self.address = scheme, host, port, address
        self.timeout = timeout
        self.max_idle = max_idle
        self.tls = tls
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self.closed = False

    def _connect(self) -> _Connection:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _take(self) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._connect()
            if not connection.dropped():
                return connection
            connection.close()

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if not self.closed and len(self._idle) < self.max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def post(self, request: bytes) -> Response:
        """Send one complete request (head + body); returns the answer. OSError on any transport failure."""
        connection = self._take()
        try:
            connection.sock.sendall(request)
            response, keep_alive = _read_response(connection.reader)
        except BaseException:
            connection.close()
            raise
        if keep_alive:
            self._give_back(connection)
        else:
            connection.close()
        return response

    def close(self) -> None:
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _line(reader) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if not line:
        raise ProtocolError("the push service closed the connection")
    if len(line) > MAX_LINE:
        raise ProtocolError("header line too long")
    return line


def _read_response(reader) -> tuple[Response, bool]:
    while True:
        status_line = _line(reader)
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
            raise ProtocolError(f"not an HTTP/1.1 status line: {status_line[:60]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = _line(reader)
            if line in (b"\r\n", b"\n"):
                break
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise ProtocolError("malformed header line")
            key = name.decode("latin-1").lower()
            value = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        else:
            raise ProtocolError("too many headers")
        if 100 <= status < 200:
            continue  # 100 Continue and other interim answers precede the real one
        break
    connection = headers.get("connection", "").lower()
    keep_alive = parts[0] == b"HTTP/1.1" and "close" not in connection
    if status in (204, 304):
        return Response(status, headers, b""), keep_alive
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, complete = _read_chunked(reader)
        return Response(status, headers, body), keep_alive and complete
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ProtocolError("bad Content-Length")
        size = int(length)
        body = reader.read(min(size, MAX_BODY))
        if len(body) < min(size, MAX_BODY):
            raise ProtocolError("the push service closed the connection mid-answer")
        return Response(status, headers, body), keep_alive and size <= MAX_BODY
    return Response(status, headers, reader.read(MAX_BODY)), False  # delimited by close


def _read_chunked(reader) -> tuple[bytes, bool]:
    body = bytearray()
    while True:
        size_text = _line(reader).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError("bad chunk size") from None
        if size == 0:
            for _ in range(MAX_HEADERS + 1):  # trailers
                if _line(reader) in (b"\r\n", b"\n"):
                    return bytes(body), True
            raise ProtocolError("too many trailers")
        if len(body) + size > MAX_BODY:
            body += reader.read(MAX_BODY - len(body))
            return bytes(body), False
        chunk = reader.read(size)
        if len(chunk) < size:
            raise ProtocolError("the push service closed the connection mid-answer")
        body += chunk
        _line(reader)  # the CRLF after the chunk
