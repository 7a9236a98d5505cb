"""Errors of the API as RFC 9457 problem details (``application/problem+json``).

Every refusal names its kind (``type``, a link into the API reference), a short ``title``,
the ``status`` and, where there is one, the reason (``detail``); a body that fails its schema
lists what is wrong in ``errors``. The body is made by ``app.core.errors.problem_response``,
which answers the API's paths no view saw the same way.
"""

from __future__ import annotations

from http import HTTPStatus

import msgspec

from app.core.errors import problem_response

#: What each status means in this API (the reference page lists them under ``#problem-<status>``).
MEANINGS = {
    400: "The request cannot be read: its JSON body or a header is malformed.",
    401: "No key, or one that is unknown, revoked or expired.",
    403: "The key's scopes, or its maker's role, do not allow this.",
    404: "No such object in the key's organization (in the path, or named in the body).",
    405: "The path does not take that method.",
    409: "The object changed at the same time, or a request with the same Idempotency-Key is running.",
    410: "The organization has been deleted.",
    412: "If-Match does not name the object's current version: read it again and apply the change to that.",
    413: "The body is too large.",
    415: "A body must be JSON (Content-Type: application/json).",
    422: "The body is well-formed but breaks a rule: the errors say which.",
    423: "The organization is read-only while it waits to be deleted.",
    428: "A change must say which version it applies to, with If-Match.",
    429: "Too many requests for the key: wait for Retry-After seconds.",
    500: "An error on our side; it is logged.",
    503: "The service is unavailable for a moment: try again after Retry-After seconds.",
}


class ProblemError(msgspec.Struct):
    """One thing wrong with what was sent: where (``loc``) and what."""

    loc: list[str | int]
    msg: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem details object."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemError] | None = None


class ApiProblem(Exception):
    """Raised anywhere in an API view: answered as a problem with ``status``."""

    def __init__(self, status: int, detail: str | None = None, *, headers=None, errors=None):
        super().__init__(detail or HTTPStatus(status).phrase)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = errors


def from_exception(exc: ApiProblem):
    return problem_response(exc.status, exc.detail, headers=exc.headers, errors=exc.errors)
