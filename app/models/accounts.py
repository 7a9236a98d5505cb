"""People: one account per email address, in any number of organizations."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import CacheTopic, UTCDateTime, new_id, utcnow


def new_session_epoch() -> str:
    return secrets.token_hex(8)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    #: Their cached account (name, login epoch); their name in each of their organizations'
    #: member lists is expired by ``app/auth/identity.py``.
    __cache_topics__ = (CacheTopic("account", per="id", of_user=True),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A change of email waiting for its confirmation link.
    pending_email: Mapped[str | None] = mapped_column(String(254))
    #: Part of the login identity: changing it ends every session of this user.
    session_epoch: Mapped[str] = mapped_column(String(16), default=new_session_epoch)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The IANA time zone their pages and e-mails show times in (``app.core.dates``).
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    #: While their request to delete the account waits (``app/auth/deletion.py``).
    deletion_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    #: When the account was deleted: the row stays, nameless, for the content that names it.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch}"

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def end_all_sessions(self) -> None:
        self.session_epoch = new_session_epoch()

    def __repr__(self) -> str:
        return f"<User {self.email}>"
