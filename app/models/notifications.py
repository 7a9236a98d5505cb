"""Notifications: what a person should know about an issue, in their inbox and by email."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import CacheTopic, UTCDateTime, new_id, tenant_fk, utcnow
from app.models.work import Issue


class Notification(TenantMixin, db.Model):
    """Something a person should know about an issue; shown in the app, emailed by preference."""

    __tablename__ = "notifications"
    #: The recipient's unread count, in the layout of every page.
    __cache_topics__ = (CacheTopic("notifications", per="user_id"),)

    ASSIGNED, MENTIONED, COMMENTED = "assigned", "mentioned", "commented"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    issue_id: Mapped[uuid.UUID]
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), info={"choices": (ASSIGNED, MENTIONED, COMMENTED)})
    excerpt: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Set when the notification went out by email (immediately or in a digest).
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    actor = relationship("User", foreign_keys=[actor_id], lazy="joined")
    issue = relationship(Issue, lazy="joined", innerjoin=True)

    __table_args__ = (
        tenant_fk(["issue_id"], "issues"),
        CheckConstraint("kind IN ('assigned', 'mentioned', 'commented')", name="kind_known"),
        Index("ix_notifications_user_unread", "tenant_id", "user_id", "read_at", "created_at"),
        # The inbox's All view, newest first, paged by (created_at, id).
        Index("ix_notifications_user_created", "tenant_id", "user_id", "created_at", "id"),
    )
