"""Background work the product tracks: status, progress and outcome for a page to show."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tenancy import TenantOrSystemMixin
from app.extensions import db
from app.models.base import JSONDocument, UTCDateTime, new_id, utcnow


class Task(TenantOrSystemMixin, db.Model):
    """A piece of background work someone started, as its page shows it.

    RQ keeps the queue; the row keeps what people see: its id is also the RQ job's id, and
    the worker updates the row as it goes. An organization's work (import, export, report)
    is the tenant's own, followed by the member who started it and those who manage the
    organization. The system's own work (the operators' system check) belongs to no
    organization (``tenant_id`` is NULL): only operator pages, which enter none, see it.
    """

    __tablename__ = "tasks"

    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    STATUSES = (QUEUED, STARTED, FINISHED, FAILED)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    progress: Mapped[int] = mapped_column(default=0)
    #: A line for people: "Imported 3,400 of 10,000 rows".
    message: Mapped[str] = mapped_column(String(255), default="")
    result: Mapped[dict | None] = mapped_column(JSONDocument)
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress_percent"),
        CheckConstraint("status IN ('queued', 'started', 'finished', 'failed')", name="status_known"),
        Index("ix_tasks_kind_created_at", "tenant_id", "kind", "created_at"),
        # The key of tenant tables' foreign keys to a task (the system's tasks have no tenant).
        Index("ix_tasks_tenant_id_id", "tenant_id", "id", unique=True),
        Index("ix_tasks_status_finished_at", "status", "finished_at"),
    )

    @property
    def done(self) -> bool:
        return self.status in (self.FINISHED, self.FAILED)

    @property
    def attention(self) -> str:
        """What finished work asks people to look at ("with 12 rejected rows"), from its result."""
        if self.status != self.FINISHED or not isinstance(self.result, dict):
            return ""
        return self.result.get("attention") or ""

    @property
    def status_label(self) -> str:
        """The status as its badge says it: "Finished", or "Finished with 12 rejected rows"."""
        return f"{self.status.capitalize()} {self.attention}".strip()

    @property
    def badge(self) -> str:
        """The badge's kind: the status, or ``warning`` for finished work with something to look at."""
        return "warning" if self.attention else self.status

    @property
    def is_system_work(self) -> bool:
        return self.tenant_id is None

    def mark_started(self) -> None:
        """Started (again, when a retry runs it: the first start is kept)."""
        self.status = self.STARTED
        self.started_at = self.started_at or utcnow()
        self.error = None

    def mark_progress(self, done: int, total: int = 100, message: str = "") -> None:
        """``done`` of ``total`` units (a percentage by default); the bar shows the share, the
        page the message. Only ``mark_finished`` reaches 100%."""
        self.progress = max(0, min(99, (100 * done) // total)) if total > 0 else 0
        self.message = message[:255]

    def mark_finished(self, result: dict | None = None, message: str = "") -> None:
        self.status = self.FINISHED
        self.progress = 100
        self.result = result
        self.message = message[:255] or self.message
        self.finished_at = utcnow()

    def mark_failed(self, error: str) -> None:
        self.status = self.FAILED
        self.error = error[:4000]
        self.finished_at = utcnow()
