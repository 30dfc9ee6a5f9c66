"""Lean count-only FCM and APNs receivers for benchmarks/push.py, each run as a process of its own.

The tests' emulators (tests/push/native_emulators.py) verify every JWT and record every message; in a
benchmark that costs as much CPU as the worker being measured (hypercorn's HTTP/2 stack ~0.65 ms per APNs
delivery), on the same 2 cores. These accept, count and answer, nothing else, so the run measures baas; being
separate processes, their CPU is read from /proc apart from the worker's and the database's.

    python benchmarks/native_receiver.py fcm                       # prints the port
    python benchmarks/native_receiver.py apns CERT_FILE KEY_FILE   # prints the TLS port and the control port

Both answer `GET /count` over plain HTTP/1.1 (FCM on its one port, APNs on the control port) with
"<deliveries> <monotonic time of the last> <token requests or HTTP/2 connections> <distinct bearer tokens>".
FCM: `POST /token` (any assertion) issues one access token; `POST .../messages:send` answers 200 with a name.
APNs: HTTP/2 over TLS (ALPN h2), every stream answered 200 with an apns-id, up to 1,000 concurrent streams.
"""
from __future__ import annotations

import asyncio
import ssl
import sys
import time

STATE = {"count": 0, "last": 0.0, "extra": 0, "bearers": set()}


def _count_text() -> bytes:
    return (f"{STATE['count']} {STATE['last']} {STATE['extra']} {len(STATE['bearers'])}").encode()


class Http1(asyncio.Protocol):
    """Keep-alive HTTP/1.1, requests with Content-Length bodies (what baas and http.client send)."""
    fcm = True

    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        buffer = self.buffer + data
        out = []
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            length = int(lower[at + 17:].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(buffer) < end + 4 + length:
                break
            buffer = buffer[end + 4 + length:]
            if lower.startswith(b"get /count"):
                body = _count_text()
            elif self.fcm and lower.startswith(b"post /token"):
                STATE["extra"] += 1
                body = b'{"access_token":"ya29.bench-%d","expires_in":3600,"token_type":"Bearer"}' % STATE["extra"]
            elif self.fcm and lower.startswith(b"post "):
                at = lower.find(b"\r\nauthorization:")
                if at >= 0:
                    STATE["bearers"].add(head[at + 16:].split(b"\r\n", 1)[0].strip())
                STATE["count"] += 1
                STATE["last"] = time.monotonic()
                body = b'{"name":"projects/bench/messages/1"}'
            else:
                out.append(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            out.append(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body))
        self.buffer = buffer
        if out:
            self.transport.write(b"".join(out))


class Control(Http1):
    fcm = False


class Apns(asyncio.Protocol):
    def connection_made(self, transport):
        import h2.config
        import h2.connection

        # Headers are neither validated nor normalised: this counts, the tests' emulator checks.
        config = h2.config.H2Configuration(client_side=False, header_encoding=None, validate_inbound_headers=False,
                                           normalize_inbound_headers=False, validate_outbound_headers=False,
                                           normalize_outbound_headers=False)
        self.conn = h2.connection.H2Connection(config)
        self.conn.local_settings.max_concurrent_streams = 1000   # Apple's limit
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(2 ** 24)
        self.transport = transport
        transport.write(self.conn.data_to_send())
        STATE["extra"] += 1

    def data_received(self, data):
        import h2.events
        import h2.exceptions

        conn = self.conn
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.close()
            return
        for event in events:
            kind = type(event)
            if kind is h2.events.RequestReceived:
                for name, value in event.headers:
                    if name == b"authorization":
                        STATE["bearers"].add(value)
                        break
            elif kind is h2.events.DataReceived:
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif kind is h2.events.StreamEnded:
                conn.send_headers(event.stream_id, APNS_ANSWER, end_stream=True)
                STATE["count"] += 1
                STATE["last"] = time.monotonic()
        self.transport.write(conn.data_to_send())


APNS_ANSWER = [(b":status", b"200"), (b"apns-id", b"00000000-0000-0000-0000-000000000000")]


async def main(argv: list) -> None:
    loop = asyncio.get_running_loop()
    if argv[1] == "fcm":
        server = await loop.create_server(Http1, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
    else:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(argv[2], argv[3])
        context.set_alpn_protocols(["h2"])
        server = await loop.create_server(Apns, "127.0.0.1", 0, ssl=context)
        control = await loop.create_server(Control, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], control.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
