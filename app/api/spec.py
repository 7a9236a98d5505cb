"""The OpenAPI 3.1 document of the API, made from the views themselves by SpecTree.

SpecTree (``spectree``) was chosen because it documents and validates plain Flask views on an
ordinary blueprint: the app stays a server-rendered Flask app, with no other application or
blueprint class (as APIFlask or flask-openapi3 bring), and its msgspec backend makes the
schemas from the same structs that validate the requests (msgspec is already how the app
encodes), as JSON Schema 2020-12, which OpenAPI 3.1 uses. What SpecTree does not know
(the problem responses every operation can give, the headers, the NDJSON listing) is added
to its document here, once per process.
"""

from __future__ import annotations

import copy
import re
import threading

from flask import current_app
from spectree import SpecTree
from spectree.model_adapter import get_msgspec_model_adapter
from spectree.models import SecurityScheme, SecuritySchemeData

from app.api.problems import MEANINGS, ApiProblem, Problem

TITLE = "Worklane API"
VERSION = "1.0.0"

DESCRIPTION = """The Worklane API reads and changes an organization's projects, issues, comments
and labels. Every request sends an organization API key (made by an admin in the organization's
settings) as `Authorization: Bearer wlk_…`. Lists are paged with an opaque cursor; errors are RFC 9457
problem details; a POST may carry an `Idempotency-Key`; an issue is changed with `If-Match`
naming the version it was read at."""


def _validation_failed(req, resp, error, instance, adapter):
    """SpecTree's hook after it checks a request: what failed becomes a 422 problem listing it (a
    body that is not JSON at all was refused before, in ``app.api``)."""
    if error is None:
        return
    errors = [
        {"loc": [str(part) for part in item["loc"]], "msg": item["msg"]}
        for item in adapter.validation_errors(error)
    ]
    raise ApiProblem(422, "What was sent does not match the schema: see errors.", errors=errors)


spec = SpecTree(
    "flask",
    model_adapter=get_msgspec_model_adapter(),
    mode="strict",
    title=TITLE,
    version=VERSION,
    description=DESCRIPTION,
    # SpecTree leaves out of the document every path under its own; the document is served by
    # app.api.docs_routes, not by SpecTree's pages (they load scripts from elsewhere).
    path="_spectree",
    security_schemes=[
        SecurityScheme(
            name="apiKey",
            data=SecuritySchemeData(
                type="http", scheme="bearer", bearer_format="wlk_…", description="An organization API key."
            ),
        )
    ],
    security={"apiKey": []},
    validation_error_status=422,
    validation_error_model=Problem,
    before=_validation_failed,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda parent, child: child,
)

_lock = threading.Lock()
_documents: dict[int, dict] = {}


def document() -> dict:
    """The OpenAPI document (made once per app and process)."""
    app = current_app._get_current_object()
    made = _documents.get(id(app))
    if made is None:
        with _lock:
            made = _documents.get(id(app))
            if made is None:
                made = _documents[id(app)] = _complete(copy.deepcopy(spec._generate_spec()))
    return made


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
#: Operations changing an object that must name the version they change (``If-Match``).
NEEDS_IF_MATCH = frozenset({"update_issue"})
#: The shape of each path parameter: a value of another shape names nothing (404).
PATH_PARAMETERS = {
    "issue": {
        "type": "string",
        "pattern": "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
        "|[A-Za-z][A-Za-z0-9]{1,9}-[0-9]{1,9})$",
        "description": "The issue's id, or its key such as WEB-42.",
    },
    "project_key": {
        "type": "string",
        "pattern": "^[A-Za-z][A-Za-z0-9]{1,9}$",
        "description": "The project's key, such as WEB.",
    },
}
#: Date fields with a range, as a pattern on their text (JSON Schema has no range for dates).
DATE_PATTERNS = {"due_date": "^(19[0-9]{2}|2[0-9]{3})-"}
#: Operations answering a stream of objects, one JSON document per line, and its media type.
STREAMS = {"stream_issues": "application/x-ndjson"}
#: Operations answering an object with its version as ``ETag``.
ANSWERS_ETAG = frozenset({"get_issue", "create_issue", "update_issue"})
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": "The ETag of the object as it was read.",
    "schema": {"type": "string", "maxLength": 200},
}
_ETAG = {"description": "The object's version, for If-Match.", "schema": {"type": "string"}}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A key of your choosing (1 to 255 visible characters): the same POST sent again "
    "with it within a day gets the first answer again, marked Idempotent-Replayed.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}
_RATE_HEADERS = {
    "RateLimit-Policy": {
        "description": 'The key\'s limit: `"key";q=<requests>;w=<seconds>`.',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left of it: `"key";r=<requests>;t=<seconds until one more>`.',
        "schema": {"type": "string"},
    },
}


def _operation_names() -> dict[tuple[str, str], str]:
    """(path as the document writes it, method) -> the view's name, for each API route."""
    names = {}
    for rule in current_app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                names[(path, method.lower())] = rule.endpoint.split(".", 1)[1]
    return names


def _problem(status: int) -> dict:
    answer = {
        "description": MEANINGS[status],
        "content": {"application/problem+json": {"schema": _PROBLEM_REF}},
    }
    if status in (429, 503):
        answer["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        }
    return answer


def _complete(document: dict) -> dict:
    """What SpecTree does not know: every operation's problems, and the servers."""
    document["openapi"] = "3.1.0"
    document["servers"] = [{"url": current_app.config.get("PUBLIC_URL") or "/"}]
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    names = _operation_names()
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            operation["operationId"] = names.get((path, method), operation.get("operationId"))
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in PATH_PARAMETERS:
                    shape = dict(PATH_PARAMETERS[parameter["name"]])
                    parameter["description"] = shape.pop("description")
                    parameter["schema"] = shape
            responses = operation.setdefault("responses", {})
            # SpecTree's own validation answer becomes ours: a problem, with a reason.
            for status in (401, 403, 429, 503, 500):
                responses.setdefault(str(status), _problem(status))
            if "{" in path:
                responses.setdefault("404", _problem(404))
            if method in ("post", "patch", "put"):
                for status in (400, 404, 415):
                    responses.setdefault(str(status), _problem(status))
            if operation.get("parameters") or method in ("post", "patch", "put"):
                responses["422"] = _problem(422)
                responses.setdefault("400", _problem(400))
            if method != "get":
                responses.setdefault("409", _problem(409))
                responses.setdefault("423", _problem(423))
            if operation["operationId"] in NEEDS_IF_MATCH:
                operation.setdefault("parameters", []).append(_IF_MATCH)
                for status in (412, 428):
                    responses[str(status)] = _problem(status)
            if operation["operationId"] in STREAMS:
                responses["200"] = {
                    "description": "One issue per line (NDJSON), each an Issue.",
                    "content": {
                        STREAMS[operation["operationId"]]: {"schema": {"$ref": "#/components/schemas/Issue"}}
                    },
                }
            if method == "post":
                operation.setdefault("parameters", []).append(_IDEMPOTENCY_KEY)
            for status, answer in responses.items():
                if status.startswith("2") or status == "429":
                    answer.setdefault("headers", {}).update(_RATE_HEADERS)
            if operation["operationId"] in ANSWERS_ETAG:
                for status, answer in responses.items():
                    if status.startswith("2"):
                        answer.setdefault("headers", {})["ETag"] = _ETAG
    schemas.pop("ValidationError", None)
    for schema in schemas.values():
        for name, pattern in DATE_PATTERNS.items():
            for branch in _branches(schema.get("properties", {}).get(name)):
                if branch.get("format") == "date":
                    branch["pattern"] = pattern
    return document


def _branches(schema: dict | None) -> list[dict]:
    if schema is None:
        return []
    return schema.get("anyOf", [schema])
