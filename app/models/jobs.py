"""Background jobs the product tracks: status, progress and outcome for a page to show."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import JSONDocument, UTCDateTime, new_id, utcnow


class TrackedWork:
    """Status, progress and outcome of a piece of background work, as its page shows them.

    RQ keeps the queue; a row with these columns keeps what people see: its id is also the
    RQ job's id, and the worker updates the row as it goes.
    """

    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    STATUSES = (QUEUED, STARTED, FINISHED, FAILED)

    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    progress: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict | None] = mapped_column(JSONDocument)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @staticmethod
    def checks() -> tuple[CheckConstraint, ...]:
        return (
            CheckConstraint("progress >= 0 AND progress <= 100", name="progress_percent"),
            CheckConstraint("status IN ('queued', 'started', 'finished', 'failed')", name="status_known"),
        )

    @property
    def done(self) -> bool:
        return self.status in (self.FINISHED, self.FAILED)

    def mark_started(self) -> None:
        """Started (again, when a retry runs it: the first start is kept)."""
        self.status = self.STARTED
        self.started_at = self.started_at or utcnow()
        self.error = None

    def mark_finished(self, result: dict | None = None) -> None:
        self.status = self.FINISHED
        self.progress = 100
        self.result = result
        self.finished_at = utcnow()

    def mark_failed(self, error: str) -> None:
        self.status = self.FAILED
        self.error = error[:4000]
        self.finished_at = utcnow()


class BackgroundJob(TrackedWork, db.Model):
    """One piece of the system's background work started by someone (a system check)."""

    __tablename__ = "background_jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        *TrackedWork.checks(),
        Index("ix_background_jobs_status_created_at", "status", "created_at"),
    )

    def mark_progress(self, percent: int) -> None:
        self.progress = max(0, min(100, int(percent)))


class Task(TenantMixin, TrackedWork, db.Model):
    """Background work started by a member of an organization (import, export, report).

    The organization's counterpart of ``BackgroundJob``: the row is the tenant's own, so the
    page that started it can show a live progress bar, then the result or the error.
    """

    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(255))
    #: A line for people: "Imported 3,400 of 10,000 rows".
    message: Mapped[str] = mapped_column(String(255), default="")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        *TrackedWork.checks(),
        Index("ix_tasks_kind_created_at", "tenant_id", "kind", "created_at"),
    )

    def mark_progress(self, done: int, total: int, message: str = "") -> None:
        """``done`` of ``total`` units; the bar shows the share, the page the message."""
        self.progress = max(0, min(99, (100 * done) // total)) if total > 0 else 0
        self.message = message[:255]

    def mark_finished(self, result: dict | None = None, message: str = "") -> None:
        super().mark_finished(result)
        self.message = message[:255] or self.message
