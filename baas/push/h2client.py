"""A small HTTP/2 client on h2 and asyncio: one connection, many concurrent streams, for APNs.

APNs wants few long-lived connections with many streams each. httpx's HTTP/2 did that but cost ~1.5 ms of CPU
per request here (and its sync client breaks when threads share a connection, encode/httpx#3002); this does
only what a push provider needs: POST with a small body, read status, headers and a small answer, respect the
server's stream limit and flow-control windows, and fail every open stream when the connection goes (GOAWAY,
reset, TLS error), so the caller retries them on a new one.

Per stream it does as little as it can (profiled over 4,000 streams): the headers of a group come encoded once
(only `:path`, the device, differs, and it is sent as a never-indexed HPACK literal without Huffman coding, so
it neither churns the dynamic table, which would evict the JWT, nor costs a Huffman pass); h2's outbound
header validation is off because the header list is ours; in-flight streams are counted here rather than with
h2's O(streams) `open_outbound_streams`; what a loop iteration queues goes to the socket in one write; and a
group's streams share one deadline timer per stream instead of a task and `wait_for` each.
"""
from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack
from hpack import HeaderTuple, NeverIndexedHeaderTuple

MAX_RESPONSE_BYTES = 64 * 1024


class _PlainEncoder(hpack.Encoder):
    """Literals without Huffman coding: after the first request only `:path` is a literal, and a hex device
    token saves a few bytes for a pure-Python pass over every character."""

    def encode(self, headers, huffman: bool = True) -> bytes:
        return super().encode(headers, huffman=False)


def encode_headers(authority: bytes, headers: dict, body_length: int) -> tuple[list, list]:
    """The request headers of a group: pseudo-headers, then the rest; `:path` goes between, per stream."""
    fixed = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", authority)]
    rest = [(b"content-length", str(body_length).encode())]
    rest += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    # Indexed: each is the same on every stream. RFC 7541 7.1.3 keeps low-entropy secrets out of the table;
    # the provider JWT is high-entropy and guessing it through compression would take the whole value.
    return [HeaderTuple(k, v) for k, v in fixed], [HeaderTuple(k, v) for k, v in rest]


class ConnectionLost(Exception):
    """The connection closed (or was refused) before the stream's answer arrived."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict
    body: bytes


@dataclass(slots=True)
class _Stream:
    future: asyncio.Future
    headers: list = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)


class _Protocol(asyncio.Protocol):
    def __init__(self):
        # Outbound headers are built by encode_headers (lower-case, pseudo-headers first, no connection headers):
        # h2's per-stream validation and normalisation of them would only cost time. Inbound stay checked.
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False))
        self.conn.encoder = _PlainEncoder()
        self.loop = asyncio.get_running_loop()
        self.flush_pending = False
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.waiters: list[asyncio.Future] = []   # requests waiting for a stream slot or window
        self.closed = False
        self.ready: asyncio.Future = self.loop.create_future()

    # ---- asyncio.Protocol

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.conn.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.flush()
            self._fail_all(ConnectionLost(f"HTTP/2 protocol error: {exc}"))
            self.transport.close()
            return
        for event in events:
            self._handle(event)
        self.flush()

    def connection_lost(self, exc) -> None:
        self._fail_all(ConnectionLost(f"connection closed: {exc or 'by the server'}"))

    # ---- events

    def _handle(self, event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            if not self.ready.done():
                self.ready.set_result(True)
            self._wake()
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.headers = event.headers
        elif isinstance(event, h2.events.DataReceived):
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self.streams.get(event.stream_id)
            if stream is not None and len(stream.body) < MAX_RESPONSE_BYTES:
                stream.body += event.data
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None and not stream.future.done():
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in stream.headers}
                stream.future.set_result(Response(int(headers.pop(":status", "0")), headers, bytes(stream.body)))
            self._wake()
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None and not stream.future.done():
                stream.future.set_exception(ConnectionLost(f"stream reset by the server (code {event.error_code})"))
            self._wake()
        elif isinstance(event, h2.events.WindowUpdated):
            self._wake()
        elif isinstance(event, h2.events.ConnectionTerminated):
            # GOAWAY: streams above last_stream_id were not processed and may be retried; no new ones here.
            self.closed = True
            last = event.last_stream_id if event.last_stream_id is not None else 0
            for stream_id in [s for s in self.streams if s > last]:
                stream = self.streams.pop(stream_id)
                if not stream.future.done():
                    stream.future.set_exception(ConnectionLost("the server is closing the connection (GOAWAY)"))
            if not self.streams:
                self.transport.close()
            self._wake()

    def _fail_all(self, exc: Exception) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(exc)
        for stream in self.streams.values():
            if not stream.future.done():
                stream.future.set_exception(exc)
        self.streams.clear()
        self._wake()

    def _wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        await waiter

    def flush_soon(self) -> None:
        """Flush once at the end of this loop iteration: the streams queued meanwhile go in one TLS write."""
        if not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_pending = False
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # ---- requests

    def _slot_free(self) -> bool:
        return len(self.streams) < self.conn.remote_settings.max_concurrent_streams

    async def request_many(self, fixed: list, rest: list, paths: list, body: bytes, timeout: float) -> list:
        """POST `body` to each of `paths`: a Response or an exception (ConnectionLost) per path, in order.
        Each stream has `timeout` seconds from when it was opened."""
        futures = []
        for path in paths:
            while not self.closed and not self._slot_free():
                self.flush_soon()
                await self._wait()
            if self.closed:
                failed = self.loop.create_future()
                failed.set_exception(ConnectionLost("the connection closed"))
                futures.append(failed)
                continue
            try:
                futures.append(await self._open(fixed, rest, path, body, timeout))
            except h2.exceptions.ProtocolError as exc:  # e.g. the connection closed while this waited for a window
                failed = self.loop.create_future()
                failed.set_exception(ConnectionLost(f"HTTP/2 protocol error: {type(exc).__name__}"))
                futures.append(failed)
        self.flush_soon()
        return await asyncio.gather(*futures, return_exceptions=True)

    async def _open(self, fixed: list, rest: list, path: str, body: bytes, timeout: float) -> asyncio.Future:
        stream_id = self.conn.get_next_available_stream_id()
        future = self.loop.create_future()
        self.streams[stream_id] = _Stream(future)
        self.conn.send_headers(stream_id, [*fixed, NeverIndexedHeaderTuple(b":path", path.encode()), *rest],
                               end_stream=not body)
        while body:
            window = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
            if window <= 0:
                self.flush()
                await self._wait()
                if future.done():      # failed meanwhile
                    break
                continue
            chunk, body = body[:window], body[window:]
            self.conn.send_data(stream_id, chunk, end_stream=not body)
        timer = self.loop.call_later(timeout, self._expire, stream_id, timeout)
        future.add_done_callback(lambda _, timer=timer: timer.cancel())
        return future

    def _expire(self, stream_id: int, timeout: float) -> None:
        """No answer in time: the stream is cancelled (freeing its slot) and its request retried by the caller."""
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        if not stream.future.done():
            stream.future.set_exception(ConnectionLost(f"no answer within {timeout} s"))
        if not self.closed:
            try:
                self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.ProtocolError:
                pass
            self.flush_soon()
        self._wake()


class H2Origin:
    """One HTTP/2 connection to an origin, opened on first use and again after it closes."""

    def __init__(self, base_url: str, ssl_context: ssl.SSLContext | None, timeout: float, address: str | None = None):
        """address: the (checked) address to connect to; the certificate is still verified for the URL's host."""
        parts = urlsplit(base_url)
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.address = address or self.host
        self.authority = parts.netloc.encode()
        self.ssl = ssl_context if parts.scheme == "https" else None
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self.connections_opened = 0

    async def _connection(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:     # concurrent first requests share the one new connection
            protocol = self._protocol
            if protocol is not None and not protocol.closed:
                return protocol
            loop = asyncio.get_running_loop()
            try:
                transport, protocol = await asyncio.wait_for(loop.create_connection(
                    _Protocol, self.address, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None), self.timeout)
                if self.ssl is not None and transport.get_extra_info("ssl_object").selected_alpn_protocol() != "h2":
                    transport.close()
                    raise ConnectionLost(f"{self.host} does not speak HTTP/2")
                await asyncio.wait_for(protocol.ready, self.timeout)
            except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
                raise ConnectionLost(f"cannot connect to {self.host}:{self.port}: {type(exc).__name__}") from None
            self._protocol = protocol
            self.connections_opened += 1
            return protocol

    async def post(self, path: str, headers: dict, body: bytes) -> Response:
        answer, = await self.post_many([path], headers, body)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def post_many(self, paths: list, headers: dict, body: bytes) -> list:
        """POST the same body and headers to each path: a Response or an exception per path, in order."""
        try:
            protocol = await self._connection()
        except ConnectionLost as exc:
            return [exc] * len(paths)
        fixed, rest = encode_headers(self.authority, headers, len(body))
        return await protocol.request_many(fixed, rest, paths, body, self.timeout)

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            try:
                self._protocol.conn.close_connection()
                self._protocol.flush()
            except h2.exceptions.ProtocolError:
                pass
            self._protocol.transport.close()
        self._protocol = None


def client_ssl_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(["h2"])
    return context
