"""The rows of a CSV import that had problems: rejected rows and rows imported with warnings."""

from __future__ import annotations

import uuid

from sqlalchemy import Index
from sqlalchemy.orm import Mapped, mapped_column

from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import JSONDocument, new_id, tenant_fk


class ImportProblem(TenantMixin, db.Model):
    """One row of an import's file that had problems, kept as long as its task.

    A rejected row keeps its original cells, so the rejected rows can be downloaded, fixed and
    imported again; a row imported with warnings keeps only which values were left out and why.
    ``problems`` is a list of ``[column, value, reason]``. The import job writes these with each
    batch, in the batch's transaction, so a job run again after its worker died writes none twice.
    """

    __tablename__ = "import_problems"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID]
    #: Where the row starts in the file (line 1 is the header).
    line: Mapped[int]
    rejected: Mapped[bool]
    cells: Mapped[list | None] = mapped_column(JSONDocument)
    problems: Mapped[list] = mapped_column(JSONDocument)

    __table_args__ = (
        tenant_fk(["task_id"], "tasks"),
        Index("ix_import_problems_task_line", "tenant_id", "task_id", "line", unique=True),
    )
