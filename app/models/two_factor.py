"""A person's second factor: their TOTP secret and their single-use recovery codes.

Both are the person's, not an organization's (like ``users``): no ``tenant_id``, no row-level
security, read by the person's id.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.encryption import EncryptedText
from app.extensions import db
from app.models.base import CacheTopic, UTCDateTime, new_id, utcnow


class TwoFactor(db.Model):
    """A person's TOTP secret (encrypted at rest); on only once ``confirmed_at`` is set."""

    __tablename__ = "two_factor"
    #: Whether the person has two-factor on is part of their cached account (the organizations
    #: that require it check it on every page).
    __cache_topics__ = (CacheTopic("account", per="user_id", of_user=True),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    #: The base32 secret shared with the authenticator app.
    secret: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When a first code confirmed the enrolment; None while it is being set up.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The time step (Unix time // 30) of the last code accepted: a code of it or before is refused.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def enabled(self) -> bool:
        return self.confirmed_at is not None


class RecoveryCode(db.Model):
    """One single-use recovery code, as a keyed hash (``app/auth/two_factor.py``); deleted once used."""

    __tablename__ = "two_factor_recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
