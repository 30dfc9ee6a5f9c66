"""Request bodies read as streams: the raw body (with or without Content-Length), a metered reader that stops at
the size limit while hashing, and a pull parser over multipart/form-data that never buffers a file."""
from __future__ import annotations

import hashlib
import io

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData
from werkzeug.wsgi import get_content_length

from baas.errors import Invalid, PayloadTooLarge

CHUNK = 1024 * 1024
MAX_FORM_FIELD_BYTES = 65_536


def body_stream(environ):
    """The request body as a stream that ends where the body ends (Content-Length, or the server's end of a
    chunked body)."""
    length = get_content_length(environ)
    stream = environ["wsgi.input"]
    if length is not None:
        return Limited(stream, length)
    if environ.get("wsgi.input_terminated"):
        return stream
    return io.BytesIO()


class Limited:
    """The first `length` bytes of the server's input; ClientDisconnected when it ends before them.

    werkzeug's LimitedStream does the same through io.RawIOBase: each read allocates a zeroed buffer of the size
    asked for, and the bytes are copied twice more on the way out. Under granian (whose input has no readinto)
    that cost ~2 ms per MiB, three times granian's own read; this hands on what the server's read returns."""

    def __init__(self, stream, length: int):
        self.stream = stream
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        try:
            data = self.stream.read(size)
        except (OSError, ValueError) as exc:  # what servers raise for a connection gone (as LimitedStream)
            raise ClientDisconnected() from exc
        if not data:
            raise ClientDisconnected()
        self.remaining -= len(data)
        return data


class Cuttable:
    """Ends quietly when the client goes away; `cut` tells afterwards. tus keeps what arrived before a cut."""

    def __init__(self, stream):
        self.stream = stream
        self.cut = False

    def read(self, size: int = -1) -> bytes:
        if self.cut:
            return b""
        try:
            return self.stream.read(size)
        except (ClientDisconnected, OSError, ConnectionError):
            self.cut = True
            return b""


class Metered:
    """Counts, hashes and refuses to read past `limit` bytes (413), whatever the client announced."""

    def __init__(self, stream, limit: int, *, hashes: tuple = ("sha256",)):
        self.stream = stream
        self.limit = limit
        self.size = 0
        self.digests = {name: hashlib.new(name) for name in hashes}

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK
        try:
            data = self.stream.read(size)
        except ClientDisconnected:
            raise Invalid("The upload ended before the announced number of bytes arrived.") from None
        if data:
            self.size += len(data)
            if self.size > self.limit:
                raise PayloadTooLarge(f"The file is larger than this project's limit of {self.limit} bytes.")
            for digest in self.digests.values():
                digest.update(data)
        return data

    def hexdigest(self, name: str = "sha256") -> str:
        return self.digests[name].hexdigest()


class Peeked:
    """A stream whose first bytes were read ahead (for sniffing) and are served again first."""

    def __init__(self, stream, size: int):
        self.stream = stream
        head = bytearray()
        while len(head) < size:
            chunk = stream.read(size - len(head))
            if not chunk:
                break
            head += chunk
        self.head = bytes(head)
        self._pending = memoryview(self.head)

    def read(self, size: int = -1) -> bytes:
        if self._pending:
            if size is None or size < 0 or size >= len(self._pending):
                data, self._pending = bytes(self._pending), memoryview(b"")
            else:
                data, self._pending = bytes(self._pending[:size]), self._pending[size:]
            return data
        return self.stream.read(size)


class BeforeEnd:
    """Calls `before_end()` once, before the stream reports its end (and fails the read if it raises). A blob
    adapter completes an object (the S3 PUT or CompleteMultipartUpload, the local rename) only after it read the
    end of its stream, so `before_end` runs before any object exists, while the body is still arriving."""

    def __init__(self, stream, before_end):
        self.stream = stream
        self._before_end = before_end

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if not data and self._before_end is not None:
            before_end, self._before_end = self._before_end, None
            before_end()
        return data


class FormReader:
    """multipart/form-data read part by part: small fields are collected, the file part is a stream."""

    def __init__(self, stream, boundary: str):
        self.stream = stream
        self.decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=1_048_576, max_parts=64)
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_type: str | None = None
        self._buffer = bytearray()  # appended in place: bytes concatenation would copy the buffer per event
        self._in_file = False
        self._file_done = False
        self._done = False

    def _event(self):
        while True:
            try:
                event = self.decoder.next_event()
            except (ValueError, RequestEntityTooLarge):
                raise Invalid("The multipart/form-data body is malformed.") from None
            if not isinstance(event, NeedData):
                return event
            if self.decoder.complete:
                raise Invalid("The multipart/form-data body ended before its closing boundary.")
            chunk = self.stream.read(64 * 1024)
            self.decoder.receive_data(chunk or None)

    def _collect_field(self, name: str) -> None:
        value = bytearray()
        while True:
            event = self._event()
            if not isinstance(event, Data):
                raise Invalid("The multipart/form-data body is malformed.")
            value += event.data
            if len(value) > MAX_FORM_FIELD_BYTES:
                raise Invalid(f"The form field '{name}' is longer than {MAX_FORM_FIELD_BYTES} bytes.",
                              errors={name: ["Too long."]})
            if not event.more_data:
                break
        if name in self.fields:
            raise Invalid(f"The form field '{name}' is given twice.", errors={name: ["Given twice."]})
        try:
            self.fields[name] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(f"The form field '{name}' is not UTF-8 text.", errors={name: ["Not UTF-8."]}) from None

    def open_file(self) -> bool:
        """Read fields up to the part named `file`; False when the form has none."""
        while True:
            event = self._event()
            if isinstance(event, Epilogue):
                self._done = True
                return False
            if isinstance(event, File) and event.name == "file":
                if self._file_done:
                    raise Invalid("Send one part named 'file'.", errors={"file": ["Given twice."]})
                self.filename = event.filename
                self.file_type = event.headers.get("Content-Type")
                self._in_file = True
                return True
            if isinstance(event, (Field, File)):
                self._collect_field(event.name)

    def read(self, size: int = -1) -> bytes:
        """The file part's bytes."""
        if size is None or size < 0:
            size = CHUNK
        while len(self._buffer) < size and self._in_file:
            event = self._event()
            if not isinstance(event, Data):
                raise Invalid("The multipart/form-data body is malformed.")
            self._buffer += event.data
            if not event.more_data:
                self._in_file = False
                self._file_done = True
        if len(self._buffer) <= size:  # the usual case: all that was gathered, copied once
            data = bytes(self._buffer)
            self._buffer.clear()
        else:  # a slice of a bytearray would be copied twice (the slice, then bytes)
            with memoryview(self._buffer) as view:  # released before the resize below
                data = bytes(view[:size])
            del self._buffer[:size]  # bytearray drops a prefix without moving the rest
        return data

    def finish(self) -> dict[str, str]:
        """Read the fields after the file part; returns every field."""
        while not self._done:
            event = self._event()
            if isinstance(event, Epilogue):
                self._done = True
            elif isinstance(event, File) and event.name == "file":
                raise Invalid("Send one part named 'file'.", errors={"file": ["Given twice."]})
            elif isinstance(event, (Field, File)):
                self._collect_field(event.name)
        return self.fields
