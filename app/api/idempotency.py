"""``Idempotency-Key`` on the API's POSTs: a request sent again gets the first answer again.

A POST carrying the header claims the key for its API key (a row, committed before the work, so
a second request with it sees the claim): the same key with the same method, path and body is
answered with the stored answer for ``API_IDEMPOTENCY_SECONDS`` (a day), marked
``Idempotent-Replayed: true``; with another request it is a 422; while the first is still
running, a 409. The answer is stored in the transaction of the work itself, so they are kept
together or not at all; a request that fails (its work rolled back) gives the key up again,
so the client may retry it.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from functools import wraps

from flask import current_app, g, make_response, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.api.problems import ApiProblem
from app.core.database import commit_now
from app.extensions import db
from app.models import ApiIdempotentRequest
from app.models.base import utcnow

HEADER = "Idempotency-Key"
_VALID = re.compile(r"^[\x21-\x7e]{1,255}$")
#: The headers of an answer that are kept with it.
_KEPT_HEADERS = ("Content-Type", "ETag", "Location")


def _window() -> timedelta:
    return timedelta(seconds=current_app.config["API_IDEMPOTENCY_SECONDS"])


def _claim(value: str) -> ApiIdempotentRequest | None:
    """The stored answer to replay, or None once this request holds the key."""
    key = g.api_key
    body_hash = hashlib.sha256(request.get_data()).hexdigest()
    found = db.session.scalar(
        select(ApiIdempotentRequest).where(
            ApiIdempotentRequest.api_key_id == key.id, ApiIdempotentRequest.idempotency_key == value
        )
    )
    if found is not None and found.created_at <= utcnow() - _window():
        db.session.delete(found)  # kept past its day: the key is free again
        db.session.flush()
        found = None
    if found is None:
        claim = ApiIdempotentRequest(
            api_key_id=key.id,
            idempotency_key=value,
            method=request.method,
            path=request.path,
            body_hash=body_hash,
        )
        db.session.add(claim)
        try:
            commit_now("another request with this Idempotency-Key must see it claimed")
        except IntegrityError:
            db.session.rollback()
            raise ApiProblem(
                409, "A request with this Idempotency-Key is being processed: try again."
            ) from None
        g.idempotent_claim = (claim.tenant_id, claim.id)
        return None
    if (found.method, found.path, found.body_hash) != (request.method, request.path, body_hash):
        raise ApiProblem(422, "This Idempotency-Key was used with another request: use a new key.")
    if found.status is None:
        raise ApiProblem(409, "A request with this Idempotency-Key is being processed: try again.")
    return found


def _replay(stored: ApiIdempotentRequest):
    response = make_response(stored.response_body or b"", stored.status)
    for name, value in json.loads(stored.response_headers or "{}").items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _keep(response) -> None:
    claim = db.session.get(ApiIdempotentRequest, g.idempotent_claim)
    claim.status = response.status_code
    claim.response_headers = json.dumps(
        {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
    )
    claim.response_body = response.get_data()


def release_failed_claim(response):
    """After a request that failed: give its key up (its work, and so its claim's answer, were
    rolled back), in a transaction of its own."""
    claim = g.pop("idempotent_claim", None)
    if claim is not None and response.status_code >= 400:
        try:
            db.session.rollback()
            db.session.execute(delete(ApiIdempotentRequest).where(ApiIdempotentRequest.id == claim[1]))
            commit_now("the failed request's key is given up, in a transaction of its own")
        except Exception:
            db.session.rollback()
            current_app.logger.warning("an Idempotency-Key claim was not released", exc_info=True)
    return response


def idempotent(view):
    """View decorator for a POST that creates: honours ``Idempotency-Key``."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        value = request.headers.get(HEADER)
        if value is None:
            return view(*args, **kwargs)
        if not _VALID.match(value):
            raise ApiProblem(400, "An Idempotency-Key is 1 to 255 visible ASCII characters.")
        stored = _claim(value)
        if stored is not None:
            return _replay(stored)
        response = make_response(view(*args, **kwargs))
        if response.status_code < 400:
            _keep(response)
        return response

    return wrapped
