"""Outbound webhooks: an organization's endpoints, the events it sent and each delivery to each
endpoint with its attempts (the delivery log).

- ``WebhookEndpoint``: a URL an admin added, the event types it wants, its signing secret
  (encrypted at rest) and, for a day after a rotation, the previous one; on or off.
- ``WebhookMessage``: one event as sent (the exact body, so a redelivery sends the same bytes);
  its id is the ``webhook-id`` of every delivery of it.
- ``WebhookDelivery``: one message to one endpoint, retried on the schedule until it succeeds
  or fails for good; a redelivery is a new delivery of the same message.
- ``WebhookAttempt``: one request of a delivery and what came back.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.encryption import EncryptedText
from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import JSONDocument, UTCDateTime, new_id, tenant_fk, utcnow

#: A delivery's states: waiting for its next attempt, answered with a 2xx, given up.
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
STATUSES = (PENDING, SUCCEEDED, FAILED)


class WebhookEndpoint(TenantMixin, db.Model):
    """Where the organization's events are sent, and which of them."""

    __tablename__ = "webhook_endpoints"
    #: Publishing reads which endpoints want which events from the cache, under this topic.
    __cache_topics__ = ("webhooks",)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list] = mapped_column(JSONDocument, default=list)
    #: ``whsec_`` and the base64 of the key (Standard Webhooks).
    secret: Mapped[str] = mapped_column(EncryptedText)
    #: The secret before the last rotation, still signing until ``previous_secret_expires_at``.
    previous_secret: Mapped[str | None] = mapped_column(EncryptedText)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When it was turned off (by an admin, a 410 or persistent failure) and why; None while on.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    @property
    def name(self) -> str:
        """How the audit log names it."""
        return self.url


class WebhookMessage(TenantMixin, db.Model):
    """One event, as its deliveries send it."""

    __tablename__ = "webhook_messages"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    event_type: Mapped[str] = mapped_column(String(64))
    #: The JSON body, exactly as signed and sent.
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header: the same on every attempt and redelivery of this message."""
        return f"msg_{self.id.hex}"


class WebhookDelivery(TenantMixin, db.Model):
    """One message to one endpoint: its attempts so far and when the next is due."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        tenant_fk(["endpoint_id"], "webhook_endpoints"),
        tenant_fk(["message_id"], "webhook_messages"),
        Index("ix_webhook_deliveries_endpoint_created", "tenant_id", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column()
    message_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=PENDING, info={"choices": STATUSES})
    #: Attempts made so far.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: When the next attempt is due (while pending; a running attempt holds it a minute ahead).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The status code of the last answer (None: no answer yet, or no answer at all).
    last_status: Mapped[int | None] = mapped_column(Integer)
    #: Set on a redelivery: the delivery it repeats.
    redelivery_of_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    message: Mapped[WebhookMessage] = relationship(
        primaryjoin="and_(WebhookDelivery.tenant_id == foreign(WebhookMessage.tenant_id), "
        "WebhookDelivery.message_id == foreign(WebhookMessage.id))",
        viewonly=True,
        uselist=False,
    )


class WebhookAttempt(TenantMixin, db.Model):
    """One request of a delivery: what was sent and what came back (or why nothing did)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        tenant_fk(["delivery_id"], "webhook_deliveries"),
        Index("ix_webhook_attempts_delivery", "tenant_id", "delivery_id", "number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    delivery_id: Mapped[uuid.UUID] = mapped_column()
    number: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2000))
    request_headers: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    #: The answer's status code (None: no answer), its first KB as text, and the request's time.
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    #: Why the attempt failed without an answer (refused address, timeout …), or the answer's fault.
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
