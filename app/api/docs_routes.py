"""The API's OpenAPI document (``/api/v1/openapi.json``, public) and its reference page
(``/docs/api``), both made from the views."""

from __future__ import annotations

import hashlib
import json

from flask import Blueprint, current_app, render_template, request

from app.api import reference as reference_content
from app.api.problems import MEANINGS
from app.api.spec import document

bp = Blueprint("api_docs", __name__)

_served: dict[int, tuple[bytes, str]] = {}


@bp.get("/api/v1/openapi.json")
def openapi():
    """The OpenAPI 3.1 document, with an ETag (it changes only with a deploy)."""
    app = current_app._get_current_object()
    if id(app) not in _served:
        body = json.dumps(document(), indent=1).encode()
        _served[id(app)] = (body, hashlib.sha256(body).hexdigest()[:32])
    body, tag = _served[id(app)]
    headers = {"ETag": f'"{tag}"', "Cache-Control": "public, max-age=300"}
    if request.if_none_match.contains(tag):
        return "", 304, headers
    return body, 200, {"Content-Type": "application/json", **headers}


@bp.get("/docs/api")
def reference():
    """The API reference, for people: every operation, its parameters, body and answers."""
    doc = document()
    return render_template(
        "api/reference.html",
        doc=doc,
        operations=reference_content.operations(doc),
        schemas=reference_content.schemas(doc),
        meanings=MEANINGS,
    )
