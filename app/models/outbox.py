"""The mail outbox: every mail to send, stored in the transaction that caused it.

Account mail (sign-up, verification, password reset, email change) belongs to nobody's
organization and goes to ``outbox``; mail written as an organization (notifications,
digests, invitations) goes to that tenant's ``tenant_outbox``, scoped like any tenant table.
Both have the same columns and the same life: ``pending`` → ``sending`` (claimed by one
worker until ``due_at``) → ``sent``, or back to ``pending`` with a later ``due_at`` after a
transient error, or ``failed`` for good (``app/core/mail_delivery.py``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import UTCDateTime, new_id, utcnow

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
STATUSES = (PENDING, SENDING, SENT, FAILED)


class OutboxColumns:
    """One mail, rendered, with its delivery state."""

    PENDING, SENDING, SENT, FAILED = PENDING, SENDING, SENT, FAILED

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    recipient: Mapped[str] = mapped_column(String(320))
    #: The template it was rendered from (for logs and operators; the bodies stay out of logs).
    template: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, info={"choices": STATUSES})
    #: Deliveries begun (claims); the Message-ID stays the same for every one.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Pending: when it may be tried (next). Sending: when the claim lapses (its worker died).
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    @declared_attr.directive
    def __table_args__(cls):
        return (
            CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name="status_known"),
            Index(f"ix_{cls.__tablename__}_status_due_at", "status", "due_at"),
        )


class OutboxMail(OutboxColumns, db.Model):
    """Account mail to send: it belongs to a person, not to an organization."""

    __tablename__ = "outbox"


class TenantOutboxMail(TenantMixin, OutboxColumns, db.Model):
    """Mail an organization sends (notifications, digests, invitations)."""

    __tablename__ = "tenant_outbox"
