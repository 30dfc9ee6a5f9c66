"""What every blob store offers, and the key rules both adapters enforce."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Callable, Iterator, Protocol

_KEY_PART = re.compile(r"^[A-Za-z0-9._\-][A-Za-z0-9._\- ]{0,254}$")


class BlobNotFound(KeyError):
    pass


@dataclass
class BlobInfo:
    key: str
    size: int
    content_type: str = "application/octet-stream"
    etag: str | None = None
    modified: datetime | None = None
    metadata: dict = field(default_factory=dict)


def check_key(key: str) -> str:
    """Refuse keys that could escape their prefix on any backend ('..', absolute paths, control chars)."""
    if not isinstance(key, str) or not key or len(key) > 1024:
        raise ValueError("blob key must be 1 to 1024 characters")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not _KEY_PART.match(part):
            raise ValueError(f"blob key has an unsafe part: {part!r}")
    return key


def check_prefix(prefix: str) -> str:
    if not prefix.endswith("/"):
        raise ValueError("a prefix must end with '/'")
    check_key(prefix[:-1])
    return prefix


class AppendCheck(Protocol):
    """Called by append() once the stream is exhausted and before anything is committed; raising discards the
    bytes of this call (a tus checksum that does not match)."""

    def __call__(self) -> None: ...


class BlobStore(Protocol):
    """Both adapters implement every method; `errors` lists what they raise when the backend is unreachable."""

    errors: tuple
    def put(self, key: str, stream: BinaryIO, length: int, content_type: str,
            metadata: dict | None = None, sha256: Callable[[], str] | None = None) -> BlobInfo:
        """Store what `stream` gives (exactly `length` bytes, or any number for -1). `sha256()`, valid once the
        stream has ended, is the hex SHA-256 of those bytes when the caller hashed them anyway; an adapter may use
        it instead of hashing them again (S3 request signing)."""

    def open(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]: ...

    def copy(self, source_key: str, key: str) -> BlobInfo:
        """Copy one object to another key inside the store (on S3 without moving the bytes through baas);
        raises BlobNotFound when the source is missing."""

    def stat(self, key: str) -> BlobInfo: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def list(self, prefix: str) -> Iterator[BlobInfo]: ...

    def presigned_get_url(self, key: str, expires_seconds: int, response_headers: dict | None = None) -> str | None: ...

    def presigned_put_url(self, key: str, expires_seconds: int) -> str | None: ...

    def ping(self) -> None: ...

    # Appendable uploads (tus): bytes arrive over several requests, possibly in several processes. The state is a
    # JSON-able dict the caller stores (in MongoDB) after each append; calling append again with an older state
    # (after a crash) overwrites what that state does not cover, so a stored state is always the truth.
    def start_append(self, key: str, content_type: str) -> dict: ...

    def append(self, key: str, state: dict, offset: int, stream: BinaryIO, max_bytes: int,
               check: AppendCheck | None = None) -> tuple[dict, int]: ...

    def finish_append(self, key: str, state: dict, content_type: str) -> BlobInfo: ...

    def abort_append(self, key: str, state: dict) -> None: ...

    def abort_stale(self, prefix: str, older_than: datetime, keep=frozenset()) -> int:
        """Remove half-written uploads under `prefix` begun before `older_than` (left by killed processes),
        except the appendable uploads of the keys in `keep`."""
