"""A small HTTP/1.1 client for one job: POST a push message to a push service over a kept-alive connection.

Why not urllib3/requests/httpx/h11: measured against a loopback receiver, one POST costs ~250 us of CPU through
urllib3, ~180 us through http.client or h11 and ~600 us through httpx, against ~40 us here; at thousands of
deliveries per second that is most of a core. A push request is always the same shape (POST, a few headers
prepared once per message, a body under 4 KB, a small answer), so the client only has to get that shape right:
status line, headers, a body by Content-Length or chunked or until close, 1xx skipped, bounded sizes, timeouts,
keep-alive unless the server says otherwise.

Connections go to an address that baas.egress checked (never a fresh DNS answer), with TLS verified for the host
name.

Two forms of the same client: `HostPool` blocks its calling thread for one request; `AsyncHostPool` runs on an
asyncio loop, where one thread keeps hundreds of requests in flight (what the delivery pipeline uses, through
WebPushProvider.start_many). Both read answers with the same head and chunk parsers.
"""
from __future__ import annotations

import asyncio
import collections
import copy
import select
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from baas.egress import TargetRefused

MAX_LINE = 16 * 1024
MAX_HEADERS = 100
TIMEOUT_SWEEP_SECONDS = 0.25
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


# A lookup that failed (timed out, did not resolve) is not tried again for this long: deliveries to that origin are
# retries meanwhile, instead of each waiting for the same slow DNS server.
UNRESOLVED_SECONDS = 10
IDLE_ORIGIN_SECONDS = 600   # an origin not asked for this long after its entry ended is forgotten
_UNHELD = threading.Lock()
# Lookups one OriginPools.warm runs at once. Each also holds one of baas.egress's LOOKUP_THREADS (8) for as long as
# the resolver takes, and subscribes share those: half of them stay free for subscribes while names are silent.
WARM_THREADS = 4


class OriginPools:
    """Connection pools by origin (`scheme://host:port`), each resolved again after `resolve_seconds`: a pool is
    kept while its origin still resolves to the same address, and replaced (the old one retired) when it moves.

    `resolve(origin)` gives (scheme, host, port, address), checking the address where the caller must (egress);
    `make(scheme, host, port, address)` builds a pool; `retire(pool)` closes one. Reads take no lock: the dict
    lookup is atomic, and a stale entry is only replaced by the one thread resolving its origin.

    Resolving waits on DNS, so it holds only its origin's lock: a slow name stalls the senders to that origin,
    never those to the others. A failure is remembered and raised again without resolving: TargetRefused (the
    name points where we may not go) for `resolve_seconds`, and its old pool is retired; an OSError (the lookup
    failed or timed out) for UNRESOLVED_SECONDS or less, and an origin that had a pool keeps it, on the address
    checked before, rather than failing its deliveries over a DNS blip. An origin nobody has asked for in
    IDLE_ORIGIN_SECONDS since its entry ended is forgotten and its pool retired.
    """

    def __init__(self, resolve_seconds: float, resolve, make, retire):
        self.resolve_seconds = resolve_seconds
        self.unresolved_seconds = min(UNRESOLVED_SECONDS, resolve_seconds)
        self._resolve, self._make, self._retire = resolve, make, retire
        self._pools: dict[str, tuple] = {}        # origin -> (pool or None, good until, exception or None)
        self._origin_locks: dict[str, threading.Lock] = {}  # one per origin seen, as _pools keeps one entry each
        self._lock = threading.Lock()             # held for dict changes only, never while resolving
        self._warmers: ThreadPoolExecutor | None = None
        self._next_sweep = 0.0

    def get(self, origin: str, now: float):
        """The origin's pool; TargetRefused or OSError when it does not resolve to an address we may use."""
        found = self._pools.get(origin)
        if found is not None and found[1] > now:
            return _pool_of(found)
        with self._lock:
            origin_lock = self._origin_locks.setdefault(origin, threading.Lock())
        with origin_lock:
            found = self._pools.get(origin)
            if found is not None and found[1] > now:  # resolved by the thread we waited for
                return _pool_of(found)
            self._forget_idle(now)
            return self._renew(origin, now)

    def _forget_idle(self, now: float) -> None:
        """Drop the origins nothing has asked for in IDLE_ORIGIN_SECONDS past their entry's end, and close their
        pools: the push services a server meets over months (Edge's many WNS hosts, endpoints of long-gone
        subscriptions) must not keep an entry, a lock and idle connections each for ever. Looked at once a
        minute at most, while some origin is being resolved anyway."""
        if now < self._next_sweep:
            return
        with self._lock:
            self._next_sweep = now + 60
            idle = [origin for origin, (_, until, _) in self._pools.items() if until + IDLE_ORIGIN_SECONDS < now
                    and not self._origin_locks.get(origin, _UNHELD).locked()]
            for origin in idle:
                pool = self._pools.pop(origin)[0]
                self._origin_locks.pop(origin, None)
                if pool is not None:
                    self._retire(pool)

    def _renew(self, origin: str, now: float):
        """Resolve `origin` (its lock held) and put the outcome in place of its stale entry.

        The entry is read again under the lock once resolved: take_all may have taken the old pool meanwhile (its
        caller closes it), and then it must be neither kept nor retired here."""
        try:
            scheme, host, port, address = self._resolve(origin)
        except TargetRefused as exc:
            with self._lock:
                old = self._pools.get(origin)
                if old is not None and old[0] is not None:
                    self._retire(old[0])  # the name now points where we may not go: its connections go too
                self._pools[origin] = (None, now + self.resolve_seconds, copy.copy(exc))
            raise
        except OSError as exc:
            with self._lock:
                old = self._pools.get(origin)
                if old is not None and old[0] is not None:
                    self._pools[origin] = (old[0], now + self.unresolved_seconds, None)
                    return old[0]
                self._pools[origin] = (None, now + self.unresolved_seconds, copy.copy(exc))
            raise
        with self._lock:
            old = self._pools.get(origin)
            pool = old[0] if old is not None and old[0] is not None and old[0].address == address else None
            if pool is None:
                if old is not None and old[0] is not None:
                    self._retire(old[0])
                pool = self._make(scheme, host, port, address)
            self._pools[origin] = (pool, now + self.resolve_seconds, None)
            return pool

    def warm(self, origins, now: float) -> None:
        """Resolve those of `origins` that get() would resolve, all at once, before their deliveries ask: a batch
        to many push services (Edge's users alone are spread over many WNS hosts) then waits for its slowest
        lookup instead of their sum, and a silent DNS server holds it up once, not once per origin after it.
        Outcomes are kept as get() keeps them, so the deliveries' own get() finds them, failures included."""
        due = [origin for origin in set(origins) if (found := self._pools.get(origin)) is None or found[1] <= now]
        if len(due) < 2:
            return
        with self._lock:
            if self._warmers is None:
                self._warmers = ThreadPoolExecutor(WARM_THREADS, thread_name_prefix="baas-push-resolve")
            warmers = self._warmers
        for future in [warmers.submit(self.get, origin, now) for origin in due]:
            try:
                future.result()
            except Exception:  # kept in the origin's entry (or not, and its get() tries again), not ours to raise
                pass

    def take_all(self) -> list:
        """Forget every pool and give them to the caller to close."""
        with self._lock:
            pools, self._pools = [pool for pool, _, _ in self._pools.values() if pool is not None], {}
            warmers, self._warmers = self._warmers, None
        if warmers is not None:
            warmers.shutdown(wait=False)
        return pools


def _pool_of(entry: tuple):
    pool, _, error = entry
    if error is not None:
        raise copy.copy(error)  # a fresh one each time: raising one object again and again grows its traceback
    return pool


def _line(reader) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if not line:
        raise ProtocolError("the push service closed the connection")
    if len(line) > MAX_LINE:
        raise ProtocolError("header line too long")
    return line


def _read_head(reader) -> tuple[int, dict, bytes]:
    """(status, headers with lower-case names, HTTP version) of one answer's head."""
    status_line = _line(reader)
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise ProtocolError(f"not an HTTP/1.1 status line: {status_line[:60]!r}")
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
    return int(parts[1]), headers, parts[0]


def _read_response(reader) -> tuple[Response, bool]:
    while True:
        status, headers, version = _read_head(reader)
        if 100 <= status < 200:
            continue  # 100 Continue and other interim answers precede the real one
        break
    connection = headers.get("connection", "").lower()
    keep_alive = version == b"HTTP/1.1" and "close" not in connection
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


# ---- the same client on an event loop: many requests in flight from one thread

class _Reader:
    """One answer read incrementally from what the connection receives (the rules of `_read_response`)."""
    __slots__ = ("buffer", "status", "headers", "keep_alive", "body_start")

    def __init__(self):
        self.buffer = b""
        self.status = 0
        self.headers: dict = {}
        self.keep_alive = False
        self.body_start = -1

    def feed(self, data: bytes) -> Response | None:
        """The answer once it is complete, else None; ProtocolError when it is not HTTP/1.1 we can read."""
        self.buffer += data
        while self.body_start < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_LINE * 4:
                    raise ProtocolError("the answer's head is too long")
                return None
            head, self.buffer = self.buffer[:end + 2], self.buffer[end + 4:]
            reader = _BytesLines(head + b"\r\n")
            status, headers, version = _read_head(reader)
            if 100 <= status < 200:
                continue  # 100 Continue and other interim answers precede the real one
            self.status, self.headers, self.body_start = status, headers, 0
            self.keep_alive = version == b"HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        return self._body(closed=False)

    def closed(self) -> Response | None:
        """The answer when the server closed the connection (a body delimited by close), else None."""
        return self._body(closed=True) if self.body_start >= 0 else None

    def _body(self, closed: bool) -> Response | None:
        status, headers = self.status, self.headers
        if status in (204, 304):
            return Response(status, headers, b"")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            try:
                body, complete = _read_chunked(_BytesLines(self.buffer))
            except _Incomplete:
                if closed:
                    raise ProtocolError("the push service closed the connection mid-answer") from None
                return None
            self.keep_alive = self.keep_alive and complete
            return Response(status, headers, body)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise ProtocolError("bad Content-Length")
            size = min(int(length), MAX_BODY)
            if len(self.buffer) < size:
                if closed:
                    raise ProtocolError("the push service closed the connection mid-answer")
                return None
            self.keep_alive = self.keep_alive and int(length) <= MAX_BODY and len(self.buffer) == size
            return Response(status, headers, self.buffer[:size])
        if closed or len(self.buffer) >= MAX_BODY:  # delimited by close
            self.keep_alive = False
            return Response(status, headers, self.buffer[:MAX_BODY])
        return None


class _Incomplete(Exception):
    pass


class _BytesLines:
    """The reader interface `_read_head` and `_read_chunked` use, over bytes already received."""
    __slots__ = ("data", "at")

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def readline(self, limit: int) -> bytes:
        end = self.data.find(b"\n", self.at, self.at + limit)
        if end < 0:
            if len(self.data) - self.at >= limit:
                end = self.at + limit - 1
            else:
                raise _Incomplete
        line, self.at = self.data[self.at:end + 1], end + 1
        return line

    def read(self, size: int) -> bytes:
        if len(self.data) - self.at < size:
            raise _Incomplete
        chunk, self.at = self.data[self.at:self.at + size], self.at + size
        return chunk


class _AsyncConnection(asyncio.Protocol):
    """One kept-alive connection on the loop, carrying one request at a time."""

    def __init__(self, pool: "AsyncHostPool"):
        self.pool = pool
        self.transport = None
        self.reader: _Reader | None = None
        self.done = None          # callback(Response | Exception) of the request on the wire
        self.deadline = 0.0       # loop time by which the answer must be complete
        self.lost = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, request: bytes, done) -> None:
        self.reader, self.done = _Reader(), done
        self.deadline = self.pool.busy(self)
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        if self.done is None:  # nothing was asked: an idle connection must not carry anything
            self.transport.close()
            return
        try:
            response = self.reader.feed(data)
        except ProtocolError as exc:
            self._end(exc, keep=False)
            return
        if response is not None:
            self._end(response, keep=self.reader.keep_alive)

    def connection_lost(self, exc) -> None:
        self.lost = True
        if self.done is None:
            self.pool.forget(self)
            return
        try:
            response = self.reader.closed()
        except ProtocolError as error:
            response = error
        self._end(response if response is not None else ProtocolError("the push service closed the connection"),
                  keep=False)

    def timed_out(self) -> None:
        self._end(TimeoutError(f"no answer within {self.pool.timeout} s"), keep=False)

    def _end(self, result, keep: bool) -> None:
        done, self.done, self.reader = self.done, None, None
        if done is None:
            return
        self.pool.answered(self)
        if not keep and not self.lost:
            self.transport.close()
        self.pool.release(self, keep and not self.lost)
        done(result)


class AsyncHostPool:
    """Kept-alive connections to one push-service origin on one event loop (all to one checked address), at
    most `limit` at once; requests beyond that wait for a connection in the order they came. Loop thread only."""

    def __init__(self, loop, scheme: str, host: str, port: int, address: str, timeout: float, limit: int,
                 tls: ssl.SSLContext | None):
        self.loop = loop
        self.scheme, self.host, self.port, self.address = scheme, host, port, address
        self.timeout = timeout
        self.limit = limit
        self.tls = tls if scheme == "https" else None
        self._idle: list[_AsyncConnection] = []
        self._busy: set[_AsyncConnection] = set()
        self._sweeping = None       # the timer that checks the busy connections' deadlines
        self._waiting: collections.deque = collections.deque()
        self.open = 0               # connections made or being made
        self.closed = False

    def post(self, request: bytes, done) -> None:
        """Send `request`; `done(Response or OSError)` is called on the loop when it is answered or failed."""
        if self._idle:
            self._idle.pop().send(request, done)
        elif self.open < self.limit:
            self.open += 1
            self.loop.create_task(self._connect(request, done))
        else:
            self._waiting.append((request, done))

    async def _connect(self, request: bytes, done) -> None:
        try:
            _, connection = await asyncio.wait_for(self.loop.create_connection(
                lambda: _AsyncConnection(self), self.address, self.port, ssl=self.tls,
                server_hostname=self.host if self.tls else None), self.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            self.open -= 1
            done(exc if isinstance(exc, OSError) else TimeoutError("connect timed out"))
            self._next()
            return
        sock = connection.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.send(request, done)

    def busy(self, connection: _AsyncConnection) -> float:
        """A request goes out on `connection`: its deadline. Deadlines are checked by one timer a pool every
        TIMEOUT_SWEEP_SECONDS rather than one timer a request (a timer handle costs as much as parsing the
        answer); a request times out within that much after its timeout."""
        self._busy.add(connection)
        if self._sweeping is None:
            self._sweeping = self.loop.call_later(TIMEOUT_SWEEP_SECONDS, self._sweep)
        return self.loop.time() + self.timeout

    def answered(self, connection: _AsyncConnection) -> None:
        self._busy.discard(connection)

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in [c for c in self._busy if c.deadline <= now]:
            connection.timed_out()
        self._sweeping = self.loop.call_later(TIMEOUT_SWEEP_SECONDS, self._sweep) if self._busy else None

    def release(self, connection: _AsyncConnection, keep: bool) -> None:
        if keep and not self.closed:
            if self._waiting:
                connection.send(*self._waiting.popleft())
                return
            self._idle.append(connection)
            return
        if keep:
            connection.transport.close()
        self.open -= 1
        self._next()

    def _next(self) -> None:
        while self._waiting and self.open < self.limit and not self.closed:
            request, done = self._waiting.popleft()
            self.post(request, done)

    def forget(self, connection: _AsyncConnection) -> None:
        """An idle connection the server closed."""
        if connection in self._idle:
            self._idle.remove(connection)
            self.open -= 1

    def close(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.transport.close()
        waiting, self._waiting = self._waiting, collections.deque()
        for _, done in waiting:
            done(ConnectionError("the pool was closed"))
