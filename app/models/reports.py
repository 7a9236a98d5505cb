"""Report snapshots: an organization's (or a project's) charts, computed by a worker."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import JSONDocument, UTCDateTime, new_id, utcnow


class ReportSnapshot(TenantMixin, db.Model):
    """The latest computed reports of one scope: the whole organization, or one project.

    One row per scope, replaced by each computation. ``data_version`` names the issue data
    it was computed from (the tenant's ``issues`` cache version and the week the window
    ends in): a page whose current version differs shows it as out of date and asks a
    worker for a new one.
    """

    __tablename__ = "report_snapshots"

    ORGANIZATION = "org"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: ``org`` or ``project:<project id>``.
    scope: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[uuid.UUID | None]
    data_version: Mapped[str] = mapped_column(String(64))
    #: When the computation read the data (the numbers are as of this moment).
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSONDocument)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "project_id"], ["projects.tenant_id", "projects.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("tenant_id", "scope"),
    )

    @staticmethod
    def scope_for(project_id) -> str:
        return f"project:{project_id}" if project_id else ReportSnapshot.ORGANIZATION
