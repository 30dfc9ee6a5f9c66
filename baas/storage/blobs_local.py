"""Blob store on local disk, for the embedded default. Metadata sits beside each file as JSON."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from baas.storage.blobs import BlobInfo, BlobNotFound, check_key, check_prefix

_META_SUFFIX = ".baasmeta"
_UPLOAD_PREFIX = ".upload-"
# Measured against 1 MiB through `baas serve` (docs/performance.md): uploads faster with 256 KiB, downloads the same.
_CHUNK = 256 * 1024


def _version_tag() -> str:
    """A blob's ETag on disk: new with every write, opaque like S3's (whose ETag is an MD5 only for single PUTs).
    Not a hash of the bytes: an MD5 of every upload halved the embedded default's upload throughput, and nothing
    reads it as one (files are identified to clients by the sha256 the files service computes)."""
    return secrets.token_hex(16)


def _move_into_place(partial: str, path: Path, content_type: str, metadata: dict) -> str:
    """Give a fully written `partial` file its sidecar and move both to `path`, the sidecar first (a blob that can
    be found always has its metadata); returns the new ETag. put() and finish_append() both end here."""
    etag = _version_tag()
    meta_tmp = partial + _META_SUFFIX
    with open(meta_tmp, "w", encoding="utf-8") as out:
        json.dump({"content_type": content_type, "etag": etag, "metadata": metadata}, out)
    os.replace(meta_tmp, str(path) + _META_SUFFIX)
    os.replace(partial, path)
    return etag


class LocalBlobStore:
    errors = (OSError,)

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        check_key(key)
        if key.endswith(_META_SUFFIX):
            raise ValueError("blob key may not end with " + _META_SUFFIX)
        if any(part.startswith(_UPLOAD_PREFIX) for part in key.split("/")):
            # Names of unfinished uploads; list() hides them, so a blob could never be found again.
            raise ValueError(f"blob key parts may not start with {_UPLOAD_PREFIX}")
        path = (self.root / key).resolve()
        # check_key already refuses '..'; this guards against symlinks planted inside the root.
        if self.root not in path.parents:
            raise ValueError("blob key escapes the storage root")
        return path

    def put(self, key: str, stream: BinaryIO, length: int, content_type: str,
            metadata: dict | None = None, sha256=None) -> BlobInfo:
        # `sha256` (the caller's hash of the bytes, for S3's request signing) has no use on disk.
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        # Write to a temp file and rename, so a reader never sees half a file and a failed upload leaves nothing.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_UPLOAD_PREFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    out.write(chunk)
            if length >= 0 and size != length:
                raise ValueError(f"expected {length} bytes, received {size}")
            metadata = dict(metadata or {})
            etag = _move_into_place(tmp, path, content_type, metadata)
        except BaseException:
            for leftover in (tmp, tmp + _META_SUFFIX):
                if os.path.exists(leftover):
                    os.unlink(leftover)
            raise
        return BlobInfo(key=key, size=size, content_type=content_type, etag=etag,
                        modified=datetime.now(timezone.utc), metadata=metadata)

    def copy(self, source_key: str, key: str) -> BlobInfo:
        """A copy of `source_key` at `key`, written atomically like put(); returns the copy's stat."""
        source = self.stat(source_key)
        with open(self._path(source_key), "rb") as handle:
            self.put(key, handle, source.size, source.content_type, source.metadata)
        return self.stat(key)

    def stat(self, key: str) -> BlobInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        try:
            with open(str(path) + _META_SUFFIX, encoding="utf-8") as handle:
                meta = json.load(handle)
        except FileNotFoundError:
            meta = {}
        return BlobInfo(key=key, size=st.st_size,
                        content_type=meta.get("content_type", "application/octet-stream"),
                        etag=meta.get("etag"), modified=datetime.fromtimestamp(st.st_mtime, timezone.utc),
                        metadata=meta.get("metadata", {}))

    def open(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None

        def chunks():
            with handle:
                handle.seek(offset)
                remaining = length
                while remaining is None or remaining > 0:
                    chunk = handle.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
                    if not chunk:
                        break
                    if remaining is not None:
                        remaining -= len(chunk)
                    yield chunk

        return chunks()

    def delete(self, key: str) -> None:
        path = self._path(key)
        for victim in (path, Path(str(path) + _META_SUFFIX)):
            try:
                victim.unlink()
            except FileNotFoundError:
                pass

    def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        folder = self._path(prefix[:-1])
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.endswith(_META_SUFFIX))
        shutil.rmtree(folder)
        return count

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        check_prefix(prefix)
        folder = self._path(prefix[:-1])
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.endswith(_META_SUFFIX) \
                    and not path.name.startswith(_UPLOAD_PREFIX):
                yield self.stat(path.relative_to(self.root).as_posix())

    def presigned_get_url(self, key: str, expires_seconds: int, response_headers: dict | None = None) -> str | None:
        self._path(key)  # the same key rules as every other call
        return None  # local files are served through the API

    def presigned_put_url(self, key: str, expires_seconds: int) -> str | None:
        self._path(key)
        return None

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # A name no blob key can take, unique per call: concurrent probes must not race on one file.
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=_UPLOAD_PREFIX + "ping-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise ConnectionError(f"local file storage at {self.root} is not writable: {exc}") from None

    # --- appendable uploads: one hidden part file beside the final name, renamed into place when finished ---

    def _part_path(self, key: str) -> Path:
        path = self._path(key)
        return path.parent / f"{_UPLOAD_PREFIX}append-{path.name}"

    def start_append(self, key: str, content_type: str) -> dict:
        part = self._part_path(key)
        part.parent.mkdir(parents=True, exist_ok=True)
        part.touch()
        return {}

    def append(self, key: str, state: dict, offset: int, stream: BinaryIO, max_bytes: int,
               check=None) -> tuple[dict, int]:
        part = self._part_path(key)
        written = 0
        try:
            handle = open(part, "r+b")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        with handle:
            # Bytes past the stored offset belong to a request that died before its offset was recorded.
            handle.truncate(offset)
            handle.seek(offset)
            try:
                while written < max_bytes:
                    chunk = stream.read(min(_CHUNK, max_bytes - written))
                    if not chunk:
                        break
                    handle.write(chunk)
                    written += len(chunk)
                if check is not None:
                    check()
                handle.flush()
                os.fsync(handle.fileno())
            except BaseException:
                handle.truncate(offset)
                raise
        return state, written

    def finish_append(self, key: str, state: dict, content_type: str) -> BlobInfo:
        _move_into_place(str(self._part_path(key)), self._path(key), content_type, {})
        return self.stat(key)

    def abort_append(self, key: str, state: dict) -> None:
        try:
            self._part_path(key).unlink()
        except FileNotFoundError:
            pass

    def abort_stale(self, prefix: str, older_than: datetime, keep=frozenset()) -> int:
        check_prefix(prefix)
        kept = {self._part_path(key) for key in keep}
        folder = self._path(prefix[:-1])
        if not folder.is_dir():
            return 0
        cutoff = older_than.timestamp()
        removed = 0
        for path in folder.rglob(_UPLOAD_PREFIX + "*"):
            try:
                if path.is_file() and path not in kept and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
