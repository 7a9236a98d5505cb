"""Organizations (the tenants), their members and invitations."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime

from flask import current_app, has_app_context
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import CacheTopic, UTCDateTime, new_id, utcnow

#: The shortest audit log retention an organization may choose, in days.
AUDIT_RETENTION_MIN_DAYS = 30
#: The longest, in days (ten years).
AUDIT_RETENTION_MAX_DAYS = 3650


def default_plan() -> str:
    """The plan a new organization starts on: the ``DEFAULT_PLAN`` setting."""
    return current_app.config["DEFAULT_PLAN"] if has_app_context() else "free"


SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$")


class Organization(db.Model):
    """A tenant. Its id is the ``tenant_id`` of everything it owns."""

    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: While an owner's request to delete it waits (``app/orgs/deletion.py``): when it was made
    #: and when the organization goes. It is read-only until then, and an owner may cancel.
    deletion_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deletion_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    #: Set by an operator (``app/operators/tenants.py``): its members are shown a page saying so.
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The operator's reason, mailed to the owners and shown on the console.
    suspended_reason: Mapped[str | None] = mapped_column(String(500))
    #: "Require two-factor": since when (None: not required), and the days members without it
    #: keep their access after that (0: none).
    two_factor_required_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    two_factor_grace_days: Mapped[int] = mapped_column(server_default="0")
    #: Days the audit log keeps an entry (at least ``AUDIT_RETENTION_MIN_DAYS``); older ones are
    #: deleted by the periodic job ``audit-retention`` (app/audit/jobs.py).
    audit_retention_days: Mapped[int] = mapped_column(Integer, server_default="365")
    #: "Enforce single sign-on": since when members reach the organization only after signing in
    #: through its provider (``app/sso/``); None: a password is enough.
    sso_enforced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The longest an API key made in the organization may live, in days (``app/apikeys/services.py``).
    api_key_max_days: Mapped[int] = mapped_column(Integer, server_default="365")
    #: The plan it is on (``app/plans/catalog.py``), set by an operator; what it may create.
    plan: Mapped[str] = mapped_column(String(20))

    #: The retention's default is read when first used, not returned by every insert.
    __mapper_args__ = {"eager_defaults": False}

    #: Loaded through the tenant scoping like any tenant query: only the current tenant's.
    memberships = relationship("Membership", viewonly=True, lazy="select")

    def __init__(self, **values):
        # The setting is read when the row is made; rows written by Core statements (migrations,
        # tests of old schemas) take the column's server default.
        values.setdefault("plan", default_plan())
        super().__init__(**values)

    def __repr__(self) -> str:
        return f"<Organization {self.slug}>"


class HeldSlug(db.Model):
    """The address of a deleted organization, which no new organization takes until ``held_until``."""

    __tablename__ = "held_slugs"

    slug: Mapped[str] = mapped_column(String(40), primary_key=True)
    held_until: Mapped[datetime] = mapped_column(UTCDateTime)


class Membership(TenantMixin, db.Model):
    """A user's place in an organization, with one role and how they want its notifications mailed."""

    __tablename__ = "memberships"
    #: Member lists and counts (filter menus, the dashboard, reports); the person's account
    #: holds their organizations and roles.
    __cache_topics__ = ("members", CacheTopic("account", per="user_id", of_user=True))

    #: ``email_notifications``: each notification mailed as it happens, a daily digest, or none.
    EMAIL_IMMEDIATELY, EMAIL_DAILY, EMAIL_OFF = "immediately", "daily", "off"
    EMAIL_CHOICES = (EMAIL_IMMEDIATELY, EMAIL_DAILY, EMAIL_OFF)
    #: The choices as people read them, in the order the account page offers them.
    EMAIL_CHOICE_LABELS = {EMAIL_IMMEDIATELY: "Immediately", EMAIL_DAILY: "Daily digest", EMAIL_OFF: "Off"}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    email_notifications: Mapped[str] = mapped_column(
        String(16), default=EMAIL_IMMEDIATELY, server_default=EMAIL_IMMEDIATELY
    )

    user = relationship("User", lazy="joined", innerjoin=True)
    organization = relationship(Organization, lazy="joined", innerjoin=True, viewonly=True)

    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id"),
        Index("ix_memberships_user_id", "user_id"),
        CheckConstraint(
            "email_notifications IN ('immediately', 'daily', 'off')", name="email_notifications_known"
        ),
    )


class Invitation(TenantMixin, db.Model):
    """An invitation to join with a role; the emailed link works once, until it expires."""

    __tablename__ = "invitations"
    #: A new organization's overview ticks "invite people" once one is sent.
    __cache_topics__ = ("invitations",)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    #: Part of the signed link; replaced on resend so older links stop working.
    nonce: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(16))
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    invited_by = relationship("User", foreign_keys=[invited_by_id], lazy="joined")
    organization = relationship(Organization, lazy="joined", innerjoin=True, viewonly=True)

    __table_args__ = (Index("ix_invitations_tenant_id_email", "tenant_id", "email"),)

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= utcnow():
            return "expired"
        return "pending"

    @property
    def usable(self) -> bool:
        return self.status == "pending"
