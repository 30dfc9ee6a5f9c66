"""Blob store on S3 or MinIO through the minio SDK: one bucket, one prefix per project."""
from __future__ import annotations

import io
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import BinaryIO, Callable, Iterator
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.datatypes import Part
from minio.error import S3Error

from baas.storage.blobs import BlobInfo, BlobNotFound, check_key, check_prefix

_MIB = 1024 * 1024
_PART_SIZE = 8 * _MIB
_MAX_PARTS = 10_000
_UPLOAD_READ_SECONDS = 300
# Parts sent at once by one upload (minio's put_object uses 3): memory per upload is (this + 1) part buffers.
_PARTS_IN_FLIGHT = 2
# S3's smallest part but the last; appendable uploads buffer at most this much (in a tail object between calls).
APPEND_PART_SIZE = 5 * 1024 * 1024
# One read of an upload's body or of an object sent to a client. Per-read Python work is what large transfers pay
# for (downloads: 1 MiB reads 8-15 % faster than 256 KiB, docs/performance.md); memory stays a read or two each.
_READ_CHUNK = 1024 * 1024
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}


def _split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        return parts.netloc, parts.scheme == "https"
    return endpoint, secure


def _part_size(length: int) -> int:
    """8 MiB parts (S3 allows 10,000 of them: 80 GiB of unknown length); bigger when a known length needs it."""
    if length <= 0:
        return _PART_SIZE
    needed = -(-length // _MAX_PARTS)
    return max(_PART_SIZE, -(-needed // _MIB) * _MIB)


def _read_first(stream: BinaryIO, size: int) -> bytearray:
    """Up to `size` bytes, grown as they come: a small file never pays for zeroing a whole part buffer."""
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(min(_READ_CHUNK, size - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _fill(stream: BinaryIO, buffer: bytearray) -> int:
    """Read into `buffer` until it is full or the stream ends; returns the bytes read."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(buffer):
        chunk = stream.read(min(_READ_CHUNK, len(buffer) - filled))
        if not chunk:
            break
        view[filled:filled + len(chunk)] = chunk
        filled += len(chunk)
    return filled


class _ExactLength:
    """Reads exactly `length` bytes from a stream and fails on fewer or more, before minio completes the upload.

    minio silently uploads the first `length` bytes of a longer stream; the local store refuses it, and so must
    this one, or a truncated file would be stored as if whole.
    """

    def __init__(self, stream: BinaryIO, length: int):
        self.stream = stream
        self.length = length
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining == 0:
            self._refuse_extra()
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.stream.read(size)
        if not data:
            raise ValueError(f"expected {self.length} bytes, received {self.length - self.remaining}")
        self.remaining -= len(data)
        if self.remaining == 0:
            self._refuse_extra()
        return data

    def _refuse_extra(self) -> None:
        if self.stream.read(1):
            raise ValueError(f"expected {self.length} bytes, received more")


class _Minio(Minio):
    """minio's client, except that over plain HTTP a request whose headers carry `x-amz-content-sha256` is signed
    with that hash.

    Over HTTP minio hashes every body itself to sign it, which for an upload repeats the SHA-256 baas already
    computed as the bytes arrived. S3 checks the signed hash against the bytes it receives
    (XAmzContentSHA256Mismatch), so a wrong one fails the request instead of storing other bytes. Over HTTPS minio
    sends UNSIGNED-PAYLOAD with a Content-MD5, which is kept: some bucket settings (Object Lock) require that MD5.
    `_build_headers` is minio 7.x's (setup.cfg pins minio<8)."""

    def _build_headers(self, host, headers=None, body=None, creds=None):
        given = (headers or {}).get("x-amz-content-sha256")
        if given is None or not creds or not body or self._base_url.is_https:
            if given is not None:
                del headers["x-amz-content-sha256"]  # minio sets its own
            return super()._build_headers(host, headers, body, creds)
        # Without the body minio hashes nothing (an empty payload's hash, then replaced) and adds no Content-MD5.
        headers, date = super()._build_headers(host, headers, None, creds)
        headers["Content-Length"] = str(len(body))
        headers["x-amz-content-sha256"] = given
        return headers, date


class S3BlobStore:
    # Unreachable endpoint (urllib3), refusals and server faults (S3Error, after NotFound was handled), sockets.
    errors = (urllib3.exceptions.HTTPError, S3Error, OSError)

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str,
                 secure: bool = True, region: str | None = None, timeout_seconds: float = 10):
        host, secure = _split_endpoint(endpoint, secure)
        self.endpoint = host
        self.bucket = bucket
        # minio's own pool waits 5 minutes to connect and retries 5 times, so an endpoint that drops packets
        # would hang /readyz and the start-up check for half an hour; fail within seconds instead.
        tls = {}
        if secure:
            import certifi

            tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": os.environ.get("SSL_CERT_FILE") or certifi.where()}
        def client(read_seconds: float) -> Minio:
            http_client = urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=timeout_seconds, read=read_seconds), maxsize=10,
                retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]), **tls)
            # The Minio client is lazy: no request is made until the first call.
            return _Minio(host, access_key=access_key, secret_key=secret_key, secure=secure, region=region,
                          http_client=http_client)

        self.client = client(timeout_seconds)
        # Writing a part and completing a large multipart upload may take the server far longer to answer than a
        # stat (S3 documents minutes for CompleteMultipartUpload): uploads wait longer for an answer.
        self.upload_client = client(max(timeout_seconds, _UPLOAD_READ_SECONDS))
        self._bucket_checked = False

    def _ensure_bucket(self) -> None:
        if not self._bucket_checked:
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            self._bucket_checked = True

    def put(self, key: str, stream: BinaryIO, length: int, content_type: str,
            metadata: dict | None = None, sha256: Callable[[], str] | None = None) -> BlobInfo:
        """Stream `stream` into `key` in constant memory: part buffers reused, _PARTS_IN_FLIGHT parts sent while the
        next is read. minio's put_object grows each part by bytes concatenation (quadratic copying) and queues parts
        for its threads without bound; this keeps the server's memory per upload at (_PARTS_IN_FLIGHT + 1) parts.

        `sha256()`, called once the stream has ended, gives the hex SHA-256 of all it gave: an object that fits one
        PUT is signed with it rather than hashed again (parts are still hashed by minio, one by one)."""
        check_key(key)
        self._ensure_bucket()
        if length >= 0:
            stream = _ExactLength(stream, length)
        part_size = _part_size(length)
        headers = {"Content-Type": content_type or "application/octet-stream"}
        for name, value in (metadata or {}).items():
            headers[f"x-amz-meta-{name}"] = value
        buffer = _read_first(stream, part_size)
        first = len(buffer)
        if first < part_size:  # the whole object fits one part: a plain PUT
            if sha256 is not None and first:
                headers["x-amz-content-sha256"] = sha256()
            result = self.upload_client._put_object(self.bucket, key, memoryview(buffer)[:first], headers)
            return BlobInfo(key=key, size=first, content_type=headers["Content-Type"], etag=result.etag or None,
                            modified=datetime.now(timezone.utc), metadata=dict(metadata or {}))
        upload_id = self.upload_client._create_multipart_upload(self.bucket, key, headers)
        parts: list[Part] = []
        size = 0
        try:
            with ThreadPoolExecutor(max_workers=_PARTS_IN_FLIGHT, thread_name_prefix="s3-part") as sender:
                in_flight: deque = deque()  # (part number, future, its buffer), oldest first
                filled, number = first, 1
                while True:
                    in_flight.append((number, sender.submit(
                        self.upload_client._upload_part, self.bucket, key, memoryview(buffer)[:filled], None,
                        upload_id, number), buffer))
                    size += filled
                    if filled < part_size:
                        break
                    number += 1
                    if len(in_flight) <= _PARTS_IN_FLIGHT:  # every buffer so far is being sent: one more
                        buffer = bytearray(part_size)
                    else:  # wait for the oldest part: its buffer takes the next one
                        done_number, future, buffer = in_flight.popleft()
                        parts.append(Part(done_number, future.result()))
                    filled = _fill(stream, buffer)
                    if not filled:
                        break
                for done_number, future, _ in in_flight:
                    parts.append(Part(done_number, future.result()))
            result = self.upload_client._complete_multipart_upload(self.bucket, key, upload_id, parts)
        except BaseException:
            try:
                self.upload_client._abort_multipart_upload(self.bucket, key, upload_id)
            except self.errors:
                pass  # the sweep aborts stale multipart uploads
            raise
        return BlobInfo(key=key, size=size, content_type=headers["Content-Type"],
                        etag=(result.etag or "").strip('"') or None, modified=datetime.now(timezone.utc),
                        metadata=dict(metadata or {}))

    def copy(self, source_key: str, key: str) -> BlobInfo:
        """Copy an object inside the bucket on the server side: the bytes never pass through this process. minio
        sends one CopyObject up to 5 GiB and, above, a multipart upload of UploadPartCopy ranges (compose_object;
        the copy then has S3's default Content-Type, which nothing here reads). Returns the copy's stat."""
        check_key(source_key)
        check_key(key)
        try:
            # A copy takes the server time in proportion to the size: wait for it as long as for an upload.
            self.upload_client.copy_object(self.bucket, key, CopySource(self.bucket, source_key))
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise BlobNotFound(source_key) from None
            raise
        return self.stat(key)

    def stat(self, key: str) -> BlobInfo:
        check_key(key)
        try:
            st = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise BlobNotFound(key) from None
            raise
        metadata = {k[len("x-amz-meta-"):]: v for k, v in (st.metadata or {}).items()
                    if k.lower().startswith("x-amz-meta-")}
        return BlobInfo(key=key, size=st.size, content_type=st.content_type or "application/octet-stream",
                        etag=(st.etag or "").strip('"') or None, modified=st.last_modified, metadata=metadata)

    def open(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        check_key(key)
        try:
            response = self.client.get_object(self.bucket, key, offset=offset, length=length or 0)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise BlobNotFound(key) from None
            raise

        def chunks():
            try:
                yield from response.stream(_READ_CHUNK)
            finally:
                response.close()
                response.release_conn()

        return chunks()

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            self.client.remove_object(self.bucket, key)
        except S3Error as exc:
            if exc.code not in _NOT_FOUND:  # no bucket yet: nothing to delete, as for a missing key
                raise

    def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        if not self.client.bucket_exists(self.bucket):
            return 0
        names = [obj.object_name for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)]
        for start in range(0, len(names), 1000):
            errors = list(self.client.remove_objects(
                self.bucket, [DeleteObject(name) for name in names[start:start + 1000]]))
            if errors:
                raise RuntimeError(f"could not delete {len(errors)} objects under {prefix}: {errors[0]}")
        return len(names)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        check_prefix(prefix)
        if not self.client.bucket_exists(self.bucket):
            return
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            yield BlobInfo(key=obj.object_name, size=obj.size or 0, etag=(obj.etag or "").strip('"') or None,
                           modified=obj.last_modified)

    def presigned_get_url(self, key: str, expires_seconds: int, response_headers: dict | None = None) -> str | None:
        check_key(key)
        return self.client.presigned_get_object(self.bucket, key, expires=timedelta(seconds=expires_seconds),
                                                response_headers=response_headers)

    def presigned_put_url(self, key: str, expires_seconds: int) -> str | None:
        check_key(key)
        self._ensure_bucket()
        return self.client.presigned_put_object(self.bucket, key, expires=timedelta(seconds=expires_seconds))

    def ping(self) -> None:
        try:
            self._ensure_bucket()
        except Exception as exc:  # minio raises several unrelated types for network failures
            reason = getattr(exc, "reason", None) or exc  # urllib3's MaxRetryError wraps the real cause
            raise ConnectionError(f"S3 storage at {self.endpoint} (bucket {self.bucket}) is unreachable: "
                                  f"{reason}") from None

    # --- appendable uploads: an S3 multipart upload; bytes short of a whole part wait in a tail object ---
    # minio's public API has no part-by-part upload, so these use its multipart calls (_create_multipart_upload,
    # ...), stable across minio 7.x (setup.cfg pins minio<8).

    def _tail_key(self, key: str, offset: int) -> str:
        return check_key(f"{key}.tail-{offset}")

    def _read_all(self, key: str) -> bytes:
        return b"".join(self.open(key))

    def start_append(self, key: str, content_type: str) -> dict:
        check_key(key)
        self._ensure_bucket()
        upload_id = self.client._create_multipart_upload(self.bucket, key, {"Content-Type": content_type})
        return {"upload_id": upload_id, "parts": [], "tail": None, "tail_size": 0}

    def append(self, key: str, state: dict, offset: int, stream: BinaryIO, max_bytes: int,
               check=None) -> tuple[dict, int]:
        check_key(key)
        parts = [list(p) for p in state["parts"]]
        if len(parts) * APPEND_PART_SIZE + state["tail_size"] != offset:
            raise ValueError("the upload state does not match the offset")
        buffer = bytearray(self._read_all(state["tail"]) if state["tail"] else b"")
        written = 0
        while written < max_bytes:
            chunk = stream.read(min(_READ_CHUNK, max_bytes - written))
            if not chunk:
                break
            buffer += chunk
            written += len(chunk)
            while len(buffer) >= APPEND_PART_SIZE:
                # A part number the stored state does not list yet is overwritten if this call never commits.
                number = len(parts) + 1
                etag = self.upload_client._upload_part(self.bucket, key, bytes(buffer[:APPEND_PART_SIZE]), None,
                                                state["upload_id"], number)
                parts.append([number, etag])
                del buffer[:APPEND_PART_SIZE]
        if check is not None:
            check()
        new_offset = offset + written
        tail = None
        if buffer:
            # A new name per offset: the stored state keeps pointing at the old tail until it is replaced.
            tail = self._tail_key(key, new_offset)
            if tail != state["tail"]:
                self.client.put_object(self.bucket, tail, io.BytesIO(bytes(buffer)), len(buffer))
        self._delete_tails(key, keep={state["tail"], tail})
        return {"upload_id": state["upload_id"], "parts": parts, "tail": tail, "tail_size": len(buffer)}, written

    def _delete_tails(self, key: str, keep=frozenset()) -> None:
        for obj in self.client.list_objects(self.bucket, prefix=key + ".tail-"):
            if obj.object_name not in keep:
                self.client.remove_object(self.bucket, obj.object_name)

    def finish_append(self, key: str, state: dict, content_type: str) -> BlobInfo:
        check_key(key)
        parts = [Part(number, etag) for number, etag in state["parts"]]
        if state["tail"]:
            data = self._read_all(state["tail"])
            number = len(parts) + 1
            parts.append(Part(number, self.upload_client._upload_part(self.bucket, key, data, None, state["upload_id"],
                                                               number)))
        if parts:
            self.upload_client._complete_multipart_upload(self.bucket, key, state["upload_id"], parts)
        else:  # S3 refuses a multipart upload without parts: an empty file is a plain put
            self.abort_append(key, state)
            self.client.put_object(self.bucket, key, io.BytesIO(b""), 0, content_type=content_type)
        self._delete_tails(key)
        return self.stat(key)

    def abort_append(self, key: str, state: dict) -> None:
        check_key(key)
        try:
            self.client._abort_multipart_upload(self.bucket, key, state["upload_id"])
        except S3Error as exc:
            if exc.code not in _NOT_FOUND | {"NoSuchUpload"}:
                raise
        self._delete_tails(key)

    def abort_stale(self, prefix: str, older_than: datetime, keep=frozenset()) -> int:
        check_prefix(prefix)
        if not self.client.bucket_exists(self.bucket):
            return 0
        result = self.client._list_multipart_uploads(self.bucket, prefix=prefix, max_uploads=1000)
        removed = 0
        for upload in result.uploads:
            if upload.object_name in keep or upload.initiated_time is None or upload.initiated_time >= older_than:
                continue
            try:
                self.client._abort_multipart_upload(self.bucket, upload.object_name, upload.upload_id)
                removed += 1
            except S3Error as exc:
                if exc.code not in _NOT_FOUND | {"NoSuchUpload"}:
                    raise
        return removed
