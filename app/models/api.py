"""The organization's API: its keys, and the answers kept for an ``Idempotency-Key``.

- ``ApiKey``: a key an admin made for scripts and integrations. Only a hash of the secret is
  stored, with its last four characters to tell keys apart; the key acts with its scopes, within
  the role its maker has in the organization at the time of each request.
- ``ApiIdempotentRequest``: a POST made with an ``Idempotency-Key``, with its answer once it has
  one, kept for a day so a client that sends it again gets the same answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import UTCDateTime, new_id, tenant_fk, utcnow


class ApiKey(TenantMixin, db.Model):
    __tablename__ = "api_keys"
    # The hash finds the key (and so its organization) before any tenant is known. It is not
    # declared unique: keys are unique per organization (with tenant_id), and two random 190-bit
    # keys with one hash do not happen.
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        Index("ix_api_keys_token_hash", "token_hash"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    #: Space-separated scopes (``app.api.scopes``).
    scopes: Mapped[str] = mapped_column(String(500))
    #: SHA-256 of the whole key, hex.
    token_hash: Mapped[str] = mapped_column(String(64))
    last_four: Mapped[str] = mapped_column(String(4))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_ip: Mapped[str | None] = mapped_column(String(45))

    @property
    def scope_list(self) -> tuple[str, ...]:
        return tuple(self.scopes.split())

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


class ApiIdempotentRequest(TenantMixin, db.Model):
    __tablename__ = "api_idempotent_requests"
    __table_args__ = (
        UniqueConstraint("tenant_id", "api_key_id", "idempotency_key"),
        tenant_fk(["api_key_id"], "api_keys"),
        Index("ix_api_idempotent_requests_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    api_key_id: Mapped[uuid.UUID]
    idempotency_key: Mapped[str] = mapped_column(String(255))
    #: The method and path, and a SHA-256 of the body: the same key with another request is refused.
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    body_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The answer, once there is one (None while the first request is still running).
    status: Mapped[int | None]
    response_headers: Mapped[str | None] = mapped_column(String(2000))
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
