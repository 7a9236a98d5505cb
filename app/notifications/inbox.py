"""What the inbox shows: a page of a person's notifications, newest first.

Pages are keyset pages on ``(created_at, id)``: a cursor names the last notification a page
showed, so a notification that arrives or is read meanwhile moves no other one to a page
already seen or skipped (an offset would).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from app.extensions import db
from app.models import Notification

PAGE_SIZE = 50

#: ``show=`` values: unread only (the default, what the Inbox badge counts) or every notification.
UNREAD, ALL = "unread", "all"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"^(\d{1,20})-([0-9a-f]{32})$")


class BadCursor(ValueError):
    """A page cursor that this inbox did not write."""


@dataclass(frozen=True)
class Cursor:
    """A position in the inbox: the notification's creation time and id."""

    created_at: datetime
    id: uuid.UUID

    @classmethod
    def of(cls, notification: Notification) -> Cursor:
        return cls(notification.created_at, notification.id)

    def __str__(self) -> str:
        return f"{(self.created_at - _EPOCH) // timedelta(microseconds=1)}-{self.id.hex}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        match = _CURSOR.match(text)
        if match is None:
            raise BadCursor(text)
        try:
            created_at = _EPOCH + timedelta(microseconds=int(match.group(1)))
        except OverflowError:
            raise BadCursor(text) from None
        return cls(created_at, uuid.UUID(match.group(2)))

    def older(self):
        """Criteria: notifications before this one (newest-first order)."""
        return or_(
            Notification.created_at < self.created_at,
            and_(Notification.created_at == self.created_at, Notification.id < self.id),
        )

    def newer(self):
        return or_(
            Notification.created_at > self.created_at,
            and_(Notification.created_at == self.created_at, Notification.id > self.id),
        )

    def up_to(self):
        """Criteria: this notification and every one before it."""
        return or_(self.older(), and_(Notification.created_at == self.created_at, Notification.id == self.id))


@dataclass(frozen=True)
class InboxPage:
    items: list[Notification]
    newer: Cursor | None  # where the page of newer notifications starts (None: this is the newest)
    older: Cursor | None


def _mine(user_id, show: str):
    criteria = [Notification.user_id == user_id]
    if show == UNREAD:
        criteria.append(Notification.read_at.is_(None))
    return criteria


def _any(criteria) -> bool:
    return db.session.scalar(select(Notification.id).where(*criteria).limit(1)) is not None


def inbox_page(
    user_id, show: str, before: Cursor | None = None, after: Cursor | None = None, size: int = PAGE_SIZE
) -> InboxPage:
    """One page of the person's notifications (in this organization), newest first.

    ``before``: the page just older than that position; ``after``: the page just newer;
    neither: the newest page.
    """
    mine = _mine(user_id, show)
    if after is not None:
        rows = db.session.scalars(
            select(Notification)
            .where(*mine, after.newer())
            .order_by(Notification.created_at, Notification.id)
            .limit(size + 1)
        ).all()
        items = list(reversed(rows[:size]))
        more_newer = len(rows) > size
        more_older = bool(items) and _any([*mine, Cursor.of(items[-1]).older()])
    else:
        query = select(Notification).where(*mine)
        if before is not None:
            query = query.where(before.older())
        rows = db.session.scalars(
            query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(size + 1)
        ).all()
        items = list(rows[:size])
        more_older = len(rows) > size
        more_newer = before is not None and bool(items) and _any([*mine, Cursor.of(items[0]).newer()])
    # An empty page past either end links to neither side: the page shows the way to the newest.
    return InboxPage(
        items,
        newer=Cursor.of(items[0]) if items and more_newer else None,
        older=Cursor.of(items[-1]) if items and more_older else None,
    )


def newest_unread(user_id) -> Cursor | None:
    """Where the person's unread notifications end now: "mark all read" marks up to there."""
    row = db.session.execute(
        select(Notification.created_at, Notification.id)
        .where(*_mine(user_id, UNREAD))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(1)
    ).first()
    return Cursor(*row) if row is not None else None
