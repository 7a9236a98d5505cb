"""Cursor pagination: a page of rows after a cursor, in the order they were made.

Rows are read in the order of their ids (time-ordered UUIDs: the order they were made), one more
than asked to know whether there are more. The cursor is opaque to clients: 22 URL-safe
characters standing for the last row of a page (its id, encoded). Any cursor of that shape is a
place in the list, so a page is never refused for its cursor, and what a page holds is always the
key's organization's, whatever the cursor says: it only says where to start.
"""

from __future__ import annotations

import base64
import uuid

CURSOR_PATTERN = r"^[A-Za-z0-9_-]{22}$"


def encode(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode(cursor: str | None) -> uuid.UUID | None:
    """The id a cursor goes on after (None: from the start); the schema has checked its shape."""
    if cursor is None:
        return None
    return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "==")[:16])


def listing(page_type, statement, id_column, query, shown):
    """The page of ``statement`` the query asks for (its ``limit`` and ``cursor``), as
    ``page_type`` with each row ``shown``."""
    rows, cursor = page(statement, id_column, query.limit, query.cursor)
    return page_type(data=shown(rows), has_more=cursor is not None, next_cursor=cursor)


def page(statement, id_column, limit: int, cursor: str | None):
    """Rows of ``statement`` after ``cursor``, at most ``limit``; returns (rows, next_cursor)."""
    from app.extensions import db

    after = decode(cursor)
    if after is not None:
        statement = statement.where(id_column > after)
    rows = list(db.session.scalars(statement.order_by(id_column).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode(rows[-1].id) if more else None)
