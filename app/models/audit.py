"""The organization's audit log: its entries, chained by hash, and the signed checkpoints of the chain.

Each entry carries the sequence number it has in its organization's chain, the hash of the entry
before it (``prev_hash``) and its own ``hash`` over a canonical serialisation of its fields
(``app/core/audit_chain.py``). A checkpoint records the chain's length and head, and the anchor
the chain now starts from after old entries were deleted, signed with ``AUDIT_SIGNING_KEY``,
a key the database does not hold.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint, Uuid, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import JSONDocument, UTCDateTime, new_id, utcnow


class AuditEvent(TenantMixin, db.Model):
    """Something a person did to the organization, or that touched its security; append-only.

    The actor's id, name and email are kept as they were (the person may be deleted later),
    as is a readable label of the target.
    """

    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: Position in the organization's chain: 1, 2, 3 … without gaps.
    sequence: Mapped[int] = mapped_column(Integer)
    #: No foreign key: the entry keeps the id of a person deleted since.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_name: Mapped[str | None] = mapped_column(String(100))
    actor_email: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    target_label: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("tenant_id", "sequence"),
        Index("ix_audit_events_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_audit_events_tenant_id_actor_id_sequence", "tenant_id", "actor_id", "sequence"),
    )


class AuditCheckpoint(TenantMixin, db.Model):
    """The chain as it stood at a moment, signed: how many entries, up to which sequence and hash,
    and the anchor it starts from (the last entry deleted by retention; sequence 0 before any)."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    entry_count: Mapped[int] = mapped_column(Integer)
    head_sequence: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    anchor_sequence: Mapped[int] = mapped_column(Integer)
    anchor_hash: Mapped[str] = mapped_column(String(64))
    #: HMAC-SHA256 of the fields above (and the organization), hex.
    signature: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_checkpoints_tenant_id_created_at", "tenant_id", "created_at"),)


@event.listens_for(Session, "before_flush")
def _audit_log_is_append_only(session, flush_context, instances):
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent | AuditCheckpoint) and (
            obj in session.deleted or session.is_modified(obj)
        ):
            raise PermissionError("audit events are append-only")
