"""HTTP views of file storage: thin wrappers over FileService, plus the HTTP-only rules of downloads (ranges,
conditional requests, safe headers) and of the tus 1.0 protocol."""
from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone
from urllib.parse import unquote

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.http import http_date, parse_date, parse_options_header
from werkzeug.wsgi import get_content_length

from baas.openapi import ADMIN, KEY_ONLY, USER_OPTIONAL
from baas.context import current_principal, services
from baas.documents.api import json_response
from baas.documents.service import etag_matches
from baas.errors import Invalid, MethodNotAllowed, PreconditionFailed, UnsupportedMediaType
from baas.files.content import content_disposition, served_inline
from baas.files.schemas import (DirectUploadCreateSchema, DirectUploadSchema, FilePageSchema, FileSchema,
                                FileSettingsOutSchema, FileSettingsSchema, FileUpdateSchema, UsageSchema)
from baas.files.service import FileQuery
from baas.files.streams import Cuttable, FormReader, body_stream
from baas.flask_app import BaasResponse as Response
from baas.http import raw_body
from baas.query import parse_bool

blp = Blueprint("files", __name__, url_prefix="/v1/files",
                description="File storage (X-API-Key; file rules apply to client keys, public files are readable "
                            "by any key).")
admin_blp = Blueprint("admin-files", __name__, url_prefix="/admin/v1/projects",
                      description="A project's files and their usage, with no file rules applied (platform admin "
                                  "token).")

SECURITY = USER_OPTIONAL
SERVER_SECURITY = KEY_ONLY
TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
TUS_CHECKSUMS = "sha1,sha256,md5"
UPLOAD_CHECKSUM = r"^(sha1|sha256|md5) [A-Za-z0-9+/]+={0,2}$"
_STRING = {"schema": {"type": "string"}}
_INTEGER = {"schema": {"type": "integer"}}
CONTENT_HEADERS = {"ETag": _STRING, "Last-Modified": _STRING, "Content-Length": _INTEGER,
                   "Content-Disposition": _STRING, "Accept-Ranges": _STRING, "Cache-Control": _STRING,
                   "Content-Security-Policy": _STRING, "X-Content-Type-Options": _STRING}
_UPLOAD_CHECKSUM = re.compile(UPLOAD_CHECKSUM)
_THUMB = r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$"
FITS = ("cover", "contain")
_RANGE = re.compile(r"^\s*bytes\s*=\s*(.*)$", re.I)
_RANGE_SPEC = re.compile(r"^([0-9]{0,19})-([0-9]{0,19})$")
_UPLOAD_BODY = {"required": True, "description": "multipart/form-data with a `file` part, or the raw file as the "
                 "body with any Content-Type (name, public and metadata then go in the query).", "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"},
        "name": {"type": "string"}, "public": {"type": "boolean"},
        "metadata": {"type": "string", "description": "A JSON object, as text."}}}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}}
_UPLOAD_PARAMETERS = [
    {"in": "query", "name": "name", "schema": {"type": "string"}, "description": "File name (raw bodies)."},
    {"in": "header", "name": "X-File-Name", "schema": {"type": "string"},
     "description": "File name, percent-encoded (raw bodies)."},
    {"in": "query", "name": "public", "schema": {"type": "boolean"}},
    {"in": "query", "name": "metadata", "schema": {"type": "string"}, "description": "A JSON object (raw bodies)."},
]

_LIST_PARAMETERS = [
    {"in": "query", "name": "filter", "schema": {"type": "string"},
     "description": "JSON filter over name, size, content_type, sha256, public, metadata.*, _owner, _created."},
    {"in": "query", "name": "sort", "schema": {"type": "string"}, "description": "e.g. -_created,name"},
    {"in": "query", "name": "limit", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"in": "query", "name": "cursor", "schema": {"type": "string"}, "description": "next_cursor of a page."}]


def _files():
    return services().extra["files"]


def _id_path(file_id: str) -> str:
    return f"{request.script_root}/v1/files/{file_id}"


def _file_response(doc: dict, status: int = 200, headers: list | None = None):
    return json_response(doc, status, [("ETag", f'"{doc["_rev"]}"')] + (headers or []))


# --- files -----------------------------------------------------------------------------------------------------

@blp.route("")
class Files(MethodView):
    @blp.doc(security=SECURITY, parameters=_LIST_PARAMETERS)
    @blp.alt_response(200, schema=FilePageSchema, success=True)
    @blp.doc(operationId="listFiles")
    def get(self):
        """List files the caller may read: filter, sort and keyset pages like documents"""
        args = request.args
        return json_response(_files().list(current_principal(), FileQuery(
            args.get("filter"), args.get("sort"), args.get("limit"), args.get("cursor"))))

    @raw_body
    @blp.doc(security=SECURITY, requestBody=_UPLOAD_BODY, parameters=_UPLOAD_PARAMETERS)
    @blp.alt_response(201, schema=FileSchema, success=True, headers={"ETag": _STRING, "Location": _STRING})
    @blp.alt_response(400, description="Malformed body or fields.")
    @blp.alt_response(413, description="Larger than the project's file size limit; nothing was stored.")
    @blp.alt_response(415, description="The content (sniffed from the bytes) is of a refused type.")
    @blp.alt_response(503, description="File storage is unavailable.")
    @blp.doc(operationId="uploadFile")
    def post(self):
        """Upload a file, streamed: multipart/form-data (file, name, public, metadata) or the raw body"""
        environ = request.environ
        if get_content_length(environ) is None and not environ.get("HTTP_TRANSFER_ENCODING"):
            raise Invalid("Send the file as the request body (with Content-Length or chunked).")
        mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
        stream = body_stream(environ)
        principal = current_principal()
        if mimetype == "multipart/form-data":
            if not options.get("boundary"):
                raise Invalid("A multipart/form-data body needs a boundary.")
            form = FormReader(stream, options["boundary"])
            if not form.open_file():
                raise Invalid("Send the file in a form part named 'file'.", errors={"file": ["Missing."]})

            def describe():
                fields = form.finish()
                return {"name": fields.get("name") or form.filename, "public": fields.get("public"),
                        "metadata": _metadata_text(fields.get("metadata"))}

            doc = _files().upload(principal, form, None, form.file_type, describe)
        else:
            args = request.args
            name = args.get("name") or unquote(request.headers.get("X-File-Name", ""))
            fields = {"name": name, "public": args.get("public"), "metadata": _metadata_text(args.get("metadata"))}
            doc = _files().upload(principal, stream, get_content_length(environ), mimetype or None, lambda: fields)
        return _file_response(doc, 201, [("Location", _id_path(doc["_id"]))])


def _metadata_text(text):
    from baas.files.service import parse_metadata_text

    return parse_metadata_text(text)


@blp.route("/<string(length=24):file_id>")
class File(MethodView):
    @blp.doc(security=SECURITY)
    @blp.alt_response(200, schema=FileSchema, success=True, headers={"ETag": _STRING})
    @blp.doc(operationId="getFile")
    def get(self, file_id):
        """A file's metadata"""
        return _file_response(_files().get(current_principal(), file_id))

    @blp.doc(security=SECURITY, parameters=[{"in": "header", "name": "If-Match", "schema": {"type": "string"}}])
    @blp.arguments(FileUpdateSchema, error_status_code=400)
    @blp.alt_response(200, schema=FileSchema, success=True, headers={"ETag": _STRING})
    @blp.alt_response(412, description="If-Match does not match the metadata's ETag.")
    @blp.doc(operationId="updateFile")
    def patch(self, body, file_id):
        """Change a file's name, metadata or public flag (If-Match: 412 when it changed)"""
        return _file_response(_files().update(current_principal(), file_id, body, request.headers.get("If-Match")))

    @blp.doc(security=SECURITY, parameters=[{"in": "header", "name": "If-Match", "schema": {"type": "string"}}])
    @blp.alt_response(204, success=True)
    @blp.alt_response(412, description="If-Match does not match the metadata's ETag.")
    @blp.doc(operationId="deleteFile")
    def delete(self, file_id):
        """Delete a file: its metadata, its object and its thumbnails"""
        _files().delete(current_principal(), file_id, request.headers.get("If-Match"))
        return Response(status=204)


# --- downloads -------------------------------------------------------------------------------------------------

def _disposition_kind(content_type: str, forced: bool) -> str:
    return "inline" if served_inline(content_type) and not forced else "attachment"


def _presign_headers(forced: bool):
    def headers(download) -> dict:
        return {"response-content-type": download.content_type,
                "response-content-disposition": content_disposition(_disposition_kind(download.content_type, forced),
                                                                    download.file["name"])}

    return headers


def _byte_range(header: str, size: int):
    """(start, end) of a single satisfiable range, None to send everything, or 'unsatisfiable'."""
    match = _RANGE.match(header)
    if match is None:
        return None  # another unit: ignored (RFC 9110)
    specs = [spec.strip() for spec in match.group(1).split(",")]
    if len(specs) > 1:
        return None  # several ranges are answered with the whole file
    spec = _RANGE_SPEC.match(specs[0])
    if spec is None or spec.group(1) == spec.group(2) == "" or size == 0:
        return "unsatisfiable"
    first, last = spec.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if end < start or start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _if_range_allows(if_range: str, etag: str, modified: datetime) -> bool:
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        return if_range == etag  # strong comparison: a weak tag never matches
    when = parse_date(if_range)
    return when is not None and when == modified.replace(microsecond=0)


def _not_modified(etag: str, modified: datetime) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag.strip('"'))
    since = parse_date(request.headers.get("If-Modified-Since") or "")
    return since is not None and modified.replace(microsecond=0) <= since


@blp.route("/<string(length=24):file_id>/content")
class Content(MethodView):
    @blp.doc(security=SECURITY, parameters=[
        {"in": "query", "name": "thumb", "schema": {"type": "string", "pattern": _THUMB},
         "description": "A thumbnail of an image, WIDTHxHEIGHT from the configured sizes, e.g. 200x200."},
        {"in": "query", "name": "fit", "schema": {"type": "string", "enum": list(FITS)},
         "description": "How a thumbnail fills its size (default cover)."},
        {"in": "query", "name": "download", "schema": {"type": "boolean"}, "description": "Force attachment."},
        {"in": "header", "name": "Range", "schema": {"type": "string"}, "description": "One range: bytes=0-99"},
        {"in": "header", "name": "If-Range", "schema": {"type": "string"}},
        {"in": "header", "name": "If-None-Match", "schema": {"type": "string"}},
        {"in": "header", "name": "If-Modified-Since", "schema": {"type": "string"}}])
    @blp.alt_response(200, success=True, description="The file's bytes.", headers=CONTENT_HEADERS,
                      content_type="application/octet-stream")
    @blp.alt_response(206, description="One range of the bytes.", headers={**CONTENT_HEADERS,
                                                                         "Content-Range": _STRING})
    @blp.alt_response(302, description="Redirect to a short-lived presigned URL (project setting, S3 only).",
                      headers={"Location": _STRING})
    @blp.alt_response(304, description="Not modified (If-None-Match / If-Modified-Since).",
                      headers={"ETag": _STRING})
    @blp.alt_response(400, description="Unknown thumbnail size or fit, not an image, or a decompression bomb.")
    @blp.alt_response(416, description="Range not satisfiable or malformed.", headers={"Content-Range": _STRING})
    @blp.alt_response(503, description="File storage is unavailable, or every thumbnail renderer is busy (retry "
                                       "after Retry-After).", headers={"Retry-After": _INTEGER})
    @blp.doc(operationId="downloadFile")
    def get(self, file_id):
        """Download a file (streamed), one byte range of it, or a thumbnail of an image"""
        args = request.args
        thumb, fit = args.get("thumb"), args.get("fit")
        if fit is not None and fit not in FITS:
            raise Invalid("fit is cover or contain.", errors={"fit": ["Not cover or contain."]})
        attachment = parse_bool(args.get("download"), "download")
        files = _files()
        download = files.download(current_principal(), file_id, thumb, fit,
                                  None if thumb else _presign_headers(attachment))
        if download.redirect:
            return Response(status=302, headers={"Location": download.redirect, "Cache-Control": "no-store"})
        kind = _disposition_kind(download.content_type, attachment)
        headers = {"ETag": download.etag, "Last-Modified": http_date(download.modified), "Accept-Ranges": "bytes",
                   "Cache-Control": ("public" if download.file.get("public") else "private") + ", no-cache",
                   "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
                   "Content-Disposition": content_disposition(kind, download.file["name"])}
        if _not_modified(download.etag, download.modified):
            return Response(status=304, headers={k: headers[k] for k in ("ETag", "Last-Modified", "Cache-Control")})
        size = download.size
        start, end, status = 0, size - 1, 200
        range_header = request.headers.get("Range")
        if range_header is not None and _if_range_allows(request.headers.get("If-Range") or download.etag,
                                                         download.etag, download.modified):
            chosen = _byte_range(range_header, size)
            if chosen == "unsatisfiable":
                return _error_416(size)
            if chosen is not None:
                (start, end), status = chosen, 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1 if size else 0
        headers["Content-Length"] = str(length)
        if request.method == "HEAD" or length == 0:
            body = []
        elif download.data is not None:
            body = [download.data[start:end + 1]]
        else:
            body = files.stream(download.key, start, length)
        response = Response(body, status=status, headers=headers, content_type=download.content_type,
                            direct_passthrough=True)
        return response


def _error_416(size: int):
    from baas.errors import error_response

    return error_response(416, "The Range header is malformed or outside the file.",
                          headers={"Content-Range": f"bytes */{size}"})


# --- direct transfer -------------------------------------------------------------------------------------------

@blp.route("/uploads")
class DirectUploads(MethodView):
    @blp.doc(security=SECURITY)
    @blp.arguments(DirectUploadCreateSchema, error_status_code=400)
    @blp.response(201, DirectUploadSchema)
    @blp.alt_response(409, description="The server keeps files on local disk: direct transfer needs S3.")
    @blp.alt_response(413, description="The announced size is over the project's limit.")
    @blp.doc(operationId="startDirectUpload")
    def post(self, body):
        """Start a direct upload: a presigned PUT URL to S3 and the id to complete it with"""
        return _files().direct_start(current_principal(), body)


@blp.route("/uploads/<string(length=32):upload_id>/complete")
class CompleteDirectUpload(MethodView):
    @blp.doc(security=SECURITY)
    @blp.alt_response(201, schema=FileSchema, success=True, headers={"ETag": _STRING, "Location": _STRING})
    @blp.alt_response(409, description="Nothing was PUT to the presigned URL yet, or another request is completing "
                                       "this upload; retry.")
    @blp.alt_response(413, description="The object is over the size limit; it was deleted and the upload is over.")
    @blp.alt_response(415, description="The object's content is of a refused type; it was deleted and the upload "
                                       "is over.")
    @blp.doc(operationId="completeDirectUpload")
    def post(self, upload_id):
        """Complete a direct upload: the object is copied to the file, checked (size, sniffed type) and recorded,
        or deleted

        The presigned URL writes a staging object; completion copies it on the storage side, so a PUT after
        completion cannot change the file. An upload is completed once (404 after). It answers with `sha256: null`
        and `sha256_state: pending`: background work reads the file to hash it."""
        doc = _files().direct_complete(current_principal(), upload_id)
        return _file_response(doc, 201, [("Location", _id_path(doc["_id"]))])


# --- settings and usage ----------------------------------------------------------------------------------------

@blp.route("/settings")
class Settings(MethodView):
    @blp.doc(security=SERVER_SECURITY)
    @blp.response(200, FileSettingsOutSchema)
    @blp.doc(operationId="getFileSettings")
    def get(self):
        """The project's file settings: size limit, allowed types, rules (server key)"""
        return _files().get_settings(current_principal())

    @blp.doc(security=SERVER_SECURITY)
    @blp.arguments(FileSettingsSchema, error_status_code=400)
    @blp.response(200, FileSettingsOutSchema)
    @blp.doc(operationId="updateFileSettings")
    def patch(self, body):
        """Change the project's file settings; omitted keys keep their value (server key)"""
        return _files().update_settings(current_principal(), body)


@admin_blp.route("/<project_id>/files")
class AdminFiles(MethodView):
    @admin_blp.doc(security=ADMIN, parameters=_LIST_PARAMETERS)
    @admin_blp.alt_response(200, schema=FilePageSchema, success=True)
    def get(self, project_id):
        """List a project's files (every file: no file rules apply to the admin)"""
        args = request.args
        return json_response(_files().admin_list(current_principal(), project_id, FileQuery(
            args.get("filter"), args.get("sort"), args.get("limit"), args.get("cursor"))))


@admin_blp.route("/<project_id>/files/<string(length=24):file_id>")
class AdminFile(MethodView):
    @admin_blp.doc(security=ADMIN)
    @admin_blp.alt_response(200, schema=FileSchema, success=True, headers={"ETag": _STRING})
    def get(self, project_id, file_id):
        """A file's metadata"""
        return _file_response(_files().admin_get(current_principal(), project_id, file_id))

    @admin_blp.doc(security=ADMIN)
    @admin_blp.alt_response(204, success=True)
    @admin_blp.alt_response(412, description="The file changed while it was being deleted; read it and retry.")
    def delete(self, project_id, file_id):
        """Delete a file: its metadata, its object and its thumbnails"""
        _files().admin_delete(current_principal(), project_id, file_id)
        return Response(status=204)


@admin_blp.route("/<project_id>/files/usage")
class Usage(MethodView):
    @admin_blp.doc(security=ADMIN)
    @admin_blp.response(200, UsageSchema)
    @admin_blp.doc(operationId="adminGetFileUsage")
    def get(self, project_id):
        """Bytes and number of files a project stores"""
        return _files().usage(project_id)


# --- tus 1.0 ---------------------------------------------------------------------------------------------------

_TUS_HEADERS = {"Tus-Resumable": _STRING}
_TUS_CHUNK = {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}
# One shared response per status and header set (baas.openapi): both operations that append state it alike.
_OFFSET_CONFLICT = {"description": "Upload-Offset is not the upload's offset (which Upload-Offset gives), or "
                                   "another request writes.", "headers": {"Upload-Offset": _INTEGER}}
_NOT_A_CHUNK = "Content-Type is not application/offset+octet-stream."
_CHECKSUM_MISMATCH = "The body does not match Upload-Checksum; it was discarded."
# The answer to a PATCH: Baas-File-Id once the upload is complete.
_APPENDED = {"Upload-Offset": _INTEGER, "Upload-Expires": _STRING, "Tus-Resumable": _STRING, "Baas-File-Id": _STRING}
TUS_RESUMABLE = {"in": "header", "name": "Tus-Resumable", "required": True,
                 "schema": {"type": "string", "enum": [TUS_VERSION]}, "description": "The tus version (412 if not)."}
UPLOAD_CHECKSUM_HEADER = {"in": "header", "name": "Upload-Checksum",
                          "schema": {"type": "string", "pattern": UPLOAD_CHECKSUM},
                          "description": "'<sha1|sha256|md5> <base64 digest>' of this request's body (460 if it "
                                         "does not match)."}
# tus requires 412 for an unsupported or missing Tus-Resumable (tus 1.0 core protocol), naming what it supports.
TUS_VERSION_MISMATCH = {"description": "Missing or unsupported Tus-Resumable; Tus-Version lists the versions spoken.",
                        "headers": {"Tus-Version": _STRING, "Tus-Resumable": _STRING}}


def _tus_headers(**extra) -> dict:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return headers


def _require_tus_version() -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise PreconditionFailed(f"This server speaks tus {TUS_VERSION}; send 'Tus-Resumable: {TUS_VERSION}'.",
                                 headers={"Tus-Version": TUS_VERSION, "Tus-Resumable": TUS_VERSION})


def _int_header(name: str, required: bool = True) -> int | None:
    value = request.headers.get(name)
    if value is None:
        if required:
            raise Invalid(f"Send the {name} header.", errors={name: ["Missing."]})
        return None
    if not value.isdigit() or len(value) > 19:
        raise Invalid(f"{name} must be a non-negative integer.", errors={name: ["Not an integer."]})
    return int(value)


def _upload_metadata(header: str | None) -> dict:
    """Upload-Metadata: comma-separated 'key base64value' pairs."""
    metadata = {}
    for pair in (header or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8") if encoded else ""
        except (binascii.Error, ValueError):
            raise Invalid(f"Upload-Metadata value of '{key}' is not base64 UTF-8.",
                          errors={"Upload-Metadata": [key]}) from None
    return metadata


def _expires(entry) -> str:
    return http_date(datetime.fromtimestamp(entry["expires_ts"], timezone.utc))


def _tus_url(upload_id: str) -> str:
    return f"{request.host_url.rstrip('/')}{request.script_root}/v1/files/tus/{upload_id}"


def _tus_patch(entry_id: str, offset: int):
    if request.mimetype != "application/offset+octet-stream":
        raise UnsupportedMediaType("tus PATCH bodies are 'Content-Type: application/offset+octet-stream'.")
    checksum = request.headers.get("Upload-Checksum")
    if checksum is not None and not _UPLOAD_CHECKSUM.match(checksum):
        raise Invalid("Upload-Checksum is '<sha1|sha256|md5> <base64 digest>'.",
                      errors={"Upload-Checksum": ["Not '<algorithm> <base64 digest>'."]})
    stream = Cuttable(body_stream(request.environ))
    entry, done = _files().tus_append(current_principal(), entry_id, offset, stream, checksum)
    extra = {"Upload-Offset": str(entry["offset"]), "Upload-Expires": _expires(entry)}
    if done is not None:
        extra["Baas-File-Id"] = done
    return extra


@blp.route("/tus/")
class TusUploads(MethodView):
    @blp.doc(security=SECURITY)
    @blp.alt_response(204, success=True, description="What this tus server supports.",
                      headers={"Tus-Version": _STRING, "Tus-Extension": _STRING, "Tus-Max-Size": _INTEGER,
                               "Tus-Checksum-Algorithm": _STRING})
    @blp.doc(operationId="tusDiscover")
    def options(self):
        """tus discovery: version, extensions, checksum algorithms, largest upload"""
        settings = _files().settings(current_principal().project)
        return Response(status=204, headers={"Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION,
                                             "Tus-Extension": TUS_EXTENSIONS, "Tus-Max-Size": str(
                                                 settings.max_file_bytes), "Tus-Checksum-Algorithm": TUS_CHECKSUMS})

    @raw_body
    @blp.doc(security=SECURITY, parameters=[
        TUS_RESUMABLE,
        {"in": "header", "name": "Upload-Length", "required": True, "schema": {"type": "integer", "minimum": 0}},
        {"in": "header", "name": "Upload-Metadata", "schema": {"type": "string"},
         "description": "filename, filetype, public, metadata (JSON), each base64."},
        UPLOAD_CHECKSUM_HEADER],
        requestBody={"required": False, "content": _TUS_CHUNK})
    @blp.alt_response(201, success=True, description="Upload created.",
                      headers={"Location": _STRING, "Upload-Expires": _STRING, "Upload-Offset": _INTEGER,
                               "Tus-Resumable": _STRING, "Baas-File-Id": _STRING})
    @blp.alt_response(412, **TUS_VERSION_MISMATCH)
    @blp.alt_response(413, description="Upload-Length is over the project's file size limit.")
    @blp.alt_response(460, description=_CHECKSUM_MISMATCH)
    @blp.doc(operationId="tusCreateUpload")
    def post(self):
        """tus creation (and creation-with-upload): start a resumable upload"""
        _require_tus_version()
        if "Upload-Concat" in request.headers:
            # Taken as plain uploads, the parts of a parallel upload would each become a file of their own.
            raise Invalid("This server does not take parallel uploads (tus concatenation): send the file as one "
                          "upload (tus-js-client: parallelUploads 1).", errors={"Upload-Concat": ["Not supported."]})
        entry = _files().tus_create(current_principal(), _int_header("Upload-Length"),
                                    _upload_metadata(request.headers.get("Upload-Metadata")))
        headers = _tus_headers(Location=_tus_url(entry["_id"]), Upload_Expires=_expires(entry), Upload_Offset="0")
        headers["Baas-File-Id"] = entry["file_id"]
        if get_content_length(request.environ) or request.environ.get("HTTP_TRANSFER_ENCODING"):
            headers.update(_tus_patch(entry["_id"], 0))
        return Response(status=201, headers=headers)


@blp.route("/tus/<string(length=32):upload_id>")
class TusUpload(MethodView):
    @blp.doc(security=SECURITY, parameters=[TUS_RESUMABLE])
    @blp.alt_response(200, success=True, description="Where the upload stands; once complete (Upload-Offset equals "
                                                    "Upload-Length), Baas-File-Id names its file.",
                      headers={"Upload-Offset": _INTEGER, "Upload-Length": _INTEGER, "Upload-Expires": _STRING,
                               "Tus-Resumable": _STRING, "Baas-File-Id": _STRING})
    @blp.alt_response(404, description="No such upload, or it expired.")
    @blp.alt_response(412, **TUS_VERSION_MISMATCH)
    @blp.doc(operationId="tusGetOffset")
    def head(self, upload_id):
        """tus: the offset to resume from"""
        _require_tus_version()
        files = _files()
        principal = current_principal()
        entry = files.tus_entry(principal, upload_id)
        headers = _tus_headers(Upload_Offset=str(entry["offset"]), Upload_Length=str(entry["length"]),
                               Upload_Expires=_expires(entry))
        done = files.tus_finish_if_complete(principal, entry)
        if done is not None:
            headers["Baas-File-Id"] = done
        return Response(status=200, headers=headers)

    @raw_body
    @blp.doc(security=SECURITY, parameters=[
        TUS_RESUMABLE,
        {"in": "header", "name": "Upload-Offset", "required": True, "schema": {"type": "integer", "minimum": 0}},
        UPLOAD_CHECKSUM_HEADER],
        requestBody={"required": True, "content": _TUS_CHUNK})
    @blp.alt_response(204, success=True, description="Stored; Upload-Offset is the new offset.",
                      headers=_APPENDED)
    @blp.alt_response(409, **_OFFSET_CONFLICT)
    @blp.alt_response(415, description=_NOT_A_CHUNK)
    @blp.alt_response(412, **TUS_VERSION_MISMATCH)
    @blp.alt_response(460, description=_CHECKSUM_MISMATCH)
    @blp.doc(operationId="tusAppendToUpload")
    def patch(self, upload_id):
        """tus: append bytes at Upload-Offset"""
        _require_tus_version()
        extra = _tus_patch(upload_id, _int_header("Upload-Offset"))
        return Response(status=204, headers=_tus_headers(**{k.replace("-", "_"): v for k, v in extra.items()}))

    @raw_body
    @blp.doc(security=SECURITY, parameters=[
        TUS_RESUMABLE,
        {"in": "header", "name": "X-HTTP-Method-Override", "required": True,
         "schema": {"type": "string", "enum": ["PATCH", "DELETE"]}, "description": "The method meant."},
        {"in": "header", "name": "Upload-Offset", "schema": {"type": "integer", "minimum": 0},
         "description": "Required with PATCH."},
        UPLOAD_CHECKSUM_HEADER],
        requestBody={"required": False, "content": _TUS_CHUNK})
    @blp.alt_response(204, success=True, description="As the PATCH or DELETE named.",
                      headers=_APPENDED)
    @blp.alt_response(405, description="Not a method this resource takes (a POST to a tus upload without "
                                       "X-HTTP-Method-Override: PATCH or DELETE); Allow lists those it takes.",
                      headers={"Allow": _STRING})
    @blp.alt_response(409, **_OFFSET_CONFLICT)
    @blp.alt_response(415, description=_NOT_A_CHUNK)
    @blp.alt_response(412, **TUS_VERSION_MISMATCH)
    @blp.alt_response(460, description=_CHECKSUM_MISMATCH)
    @blp.doc(operationId="tusMethodOverride")
    def post(self, upload_id):
        """tus: a PATCH or DELETE sent as POST with X-HTTP-Method-Override, by clients that cannot send those
        methods (tus-java-client on a JVM, whose HttpURLConnection refuses PATCH)"""
        # tus 1.0 core: the server MUST take X-HTTP-Method-Override as the request's method when it is present.
        override = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
        if override == "PATCH":
            return self.patch(upload_id)
        if override == "DELETE":
            return self.delete(upload_id)
        raise MethodNotAllowed("POST to an upload needs 'X-HTTP-Method-Override: PATCH' or 'DELETE'.",
                               headers={"Allow": "DELETE, HEAD, OPTIONS, PATCH, POST"})

    @blp.doc(security=SECURITY, parameters=[TUS_RESUMABLE])
    @blp.alt_response(204, success=True, headers=_TUS_HEADERS, description="Terminated; its bytes are gone.")
    @blp.alt_response(412, **TUS_VERSION_MISMATCH)
    @blp.doc(operationId="tusTerminateUpload")
    def delete(self, upload_id):
        """tus termination: abandon an upload"""
        _require_tus_version()
        _files().tus_terminate(current_principal(), upload_id)
        return Response(status=204, headers=_tus_headers())
