"""``/openapi.json`` and the interactive explorer at ``/docs``.

The explorer is Swagger UI, whose assets come from the ``swagger-ui-bundle-v2`` package
(Swagger UI 5, the first with OpenAPI 3.1) and are served by the service itself, so the
page works without any network beyond the service.
"""

from __future__ import annotations

import os

from flask import Blueprint, redirect, send_from_directory

from .app import json_response
from .openapi import openapi_document

__all__ = ["docs", "swagger_ui_path"]

docs = Blueprint("docs", __name__)

_STATIC = os.path.join(os.path.dirname(__file__), "static")
_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png")


def swagger_ui_path() -> str:
    import swagger_ui_bundle

    return str(swagger_ui_bundle.swagger_ui_path)


@docs.get("/openapi.json")
def openapi_json():
    return json_response(openapi_document())


@docs.get("/docs")
def explorer():
    return send_from_directory(_STATIC, "docs.html", mimetype="text/html", max_age=0)


@docs.get("/docs/")
def explorer_slash():
    return redirect("/docs", 308)


@docs.get("/docs/explorer.js")
def explorer_script():
    return send_from_directory(_STATIC, "explorer.js", mimetype="text/javascript", max_age=0)


@docs.get("/docs/assets/<name>")
def asset(name: str):
    if name not in _ASSETS:
        from .errors import ApiError

        raise ApiError(404, f"no such asset {name!r}")
    return send_from_directory(swagger_ui_path(), name, max_age=86400)
