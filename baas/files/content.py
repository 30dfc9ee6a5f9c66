"""What a file is and how it may be served: type sniffing, allowed types, safe names, Content-Disposition."""
from __future__ import annotations

import fnmatch
import re
import unicodedata
from urllib.parse import quote

import filetype

SNIFF_BYTES = 8192
MAX_NAME_CHARS = 255
OCTET_STREAM = "application/octet-stream"

# Served inline: types a browser shows but never runs. Everything else is an attachment under a sandbox CSP.
_INLINE = re.compile(r"^(image/(png|jpeg|gif|webp|avif|bmp)|audio/[a-z0-9.+-]+|video/[a-z0-9.+-]+|text/plain|"
                     r"text/csv|application/json)$")
_TEXT_TYPES = re.compile(r"^(text/[a-z0-9.+-]+|application/(json|xml|javascript|x-ndjson|yaml|toml|[a-z0-9.-]+\+json|"
                         r"[a-z0-9.-]+\+xml))$")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed bytes is still text.
        if exc.start < len(head) - 3:
            return False
    return True


def sniff(head: bytes, declared: str | None) -> str:
    """The content type the bytes show. A declared type is only kept when the bytes cannot contradict it: text
    that is not markup a browser would run. The declared type never wins over the bytes."""
    kind = filetype.guess(head) if head else None
    if kind is not None:
        return kind.mime
    if not head:
        return OCTET_STREAM
    if not _looks_like_text(head):
        return OCTET_STREAM
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:512].lower()
    if start.startswith(b"#!"):
        return "text/x-shellscript"
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")) or b"<script" in start:
        return "text/html"
    if start.startswith(b"<svg") or (start.startswith(b"<?xml") and b"<svg" in head[:4096].lower()):
        return "image/svg+xml"
    if start.startswith(b"<?xml"):
        return "application/xml"
    declared = (declared or "").split(";")[0].strip().lower()
    if declared and _TEXT_TYPES.match(declared) and declared not in ("text/html", "application/xhtml+xml",
                                                                     "image/svg+xml"):
        return declared
    return "text/plain"


def type_allowed(content_type: str, allowed: list | None, blocked: list) -> bool:
    """`allowed` (a project's list of patterns like image/*) wins when set; otherwise everything not blocked."""
    if allowed is not None:
        return any(fnmatch.fnmatchcase(content_type, pattern) for pattern in allowed)
    return not any(fnmatch.fnmatchcase(content_type, pattern) for pattern in blocked)


def served_inline(content_type: str) -> bool:
    return bool(_INLINE.match(content_type))


def sanitize_name(name) -> str:
    """A display name: no path parts, no control or format characters (bidi overrides), NFC, bounded length."""
    if not isinstance(name, str):
        name = ""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
    name = " ".join(name.split()).strip(" .")
    if not name:
        return "file"
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[:MAX_NAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME_CHARS]
    return name


def content_disposition(kind: str, name: str) -> str:
    """RFC 6266: an ASCII fallback (no quotes, backslashes or non-ASCII) and the exact name in filename*."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%;' else "_" for ch in name) or "file"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
