"""Cursor pagination: a page of rows after a cursor, in the order they were made.

Rows are read in the order of their ids (time-ordered UUIDs: the order they were made), one more
than asked to know whether there are more. The cursor is the last id of a page and what the list
was filtered by, signed: a client cannot forge or alter one, and a cursor used with other filters
is refused rather than answered with a page of something else.
"""

from __future__ import annotations

import uuid

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from app.api.problems import ApiProblem

_SALT = "api-cursor"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=_SALT)


def encode(last_id: uuid.UUID, scope: str) -> str:
    return _serializer().dumps([str(last_id), scope])


def decode(cursor: str | None, scope: str) -> uuid.UUID | None:
    """The id a cursor goes on after (None: from the start); 400 for a cursor that is not ours
    or was made for another list."""
    if cursor is None:
        return None
    try:
        last_id, made_for = _serializer().loads(cursor)
        after = uuid.UUID(last_id)
    except (BadSignature, ValueError, TypeError):
        raise ApiProblem(400, "The cursor is not one this API gave: start again without it.") from None
    if made_for != scope:
        raise ApiProblem(400, "The cursor was made for another list or other filters.")
    return after


def page(statement, id_column, limit: int, cursor: str | None, scope: str = ""):
    """Rows of ``statement`` after ``cursor``, at most ``limit``; returns (rows, next_cursor)."""
    from app.extensions import db

    after = decode(cursor, scope)
    if after is not None:
        statement = statement.where(id_column > after)
    rows = list(db.session.scalars(statement.order_by(id_column).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode(rows[-1].id, scope) if more else None)
