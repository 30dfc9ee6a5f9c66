"""Helpers of the files tests."""
import io
import os

OPEN_RULES = {"list": "authenticated", "read": "owner", "create": "authenticated", "update": "owner",
              "delete": "owner"}


def png_bytes(width=32, height=24, color=(200, 30, 30), mode="RGB", exif=None) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    image = Image.new(mode, (width, height), color)
    if exif is not None:
        image.save(out, "JPEG", exif=exif)
    else:
        image.save(out, "PNG")
    return out.getvalue()


def upload(api, data: bytes, name="file.bin", content_type="application/octet-stream", **query):
    """A raw-body upload through the API."""
    params = {"name": name, **query}
    return api.post("/v1/files", data=data, content_type=content_type, query_string=params)


def open_rules(project):
    response = project.server.patch("/v1/files/settings", json={"rules": OPEN_RULES})
    assert response.status_code == 200, response.get_json()


def stored_keys(blobs, project_id) -> list:
    return [info.key for info in blobs.list(f"projects/{project_id}/")]


def random_bytes(n: int) -> bytes:
    return os.urandom(n)
