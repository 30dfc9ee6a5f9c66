"""Swagger UI's files for /docs, served from the installed swagger-ui-bundle package.

Serving them ourselves keeps /docs working on a machine or browser without internet access and means the page
loads no third-party script.
"""
from __future__ import annotations

from flask import Blueprint, Flask, send_from_directory

STATIC_PREFIX = "docs/static"


def _assets_folder() -> str:
    from swagger_ui_bundle import swagger_ui_path

    return str(swagger_ui_path)


def init_app(app: Flask) -> None:
    folder = _assets_folder()
    blp = Blueprint("swagger-ui-assets", __name__)

    @blp.route(f"/{STATIC_PREFIX}/<path:filename>")
    def asset(filename):
        # send_from_directory refuses paths that leave the folder (../, absolute paths) with a 404.
        return send_from_directory(folder, filename, max_age=86400)

    app.register_blueprint(blp)
