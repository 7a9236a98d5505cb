"""The daily deletion of tasks that ended long ago."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import case, delete

from app.core.queue.queues import LOW, Period, job
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Task
from app.models.base import utcnow

log = logging.getLogger(__name__)

#: Finished and failed tasks stay on their pages this long (imports, exports)…
TASKS_KEPT_FOR = timedelta(days=30)
#: …except report computations, started by viewing the reports, which nobody revisits.
REPORT_TASKS_KEPT_FOR = timedelta(days=1)


@job(LOW, timeout=300, period=Period("delete-old-tasks", every_seconds=86400))
def delete_old_tasks() -> int:
    """Delete every organization's tasks that ended long ago (reports sooner); how many."""
    now = utcnow()
    ended = Task.status.in_((Task.FINISHED, Task.FAILED))
    with unscoped("housekeeping: old tasks of every organization"):
        result = db.session.execute(
            delete(Task).where(
                ended,
                Task.finished_at
                < case((Task.kind == "report", now - REPORT_TASKS_KEPT_FOR), else_=now - TASKS_KEPT_FOR),
            )
        )
        db.session.commit()
    log.info("old tasks deleted", extra={"deleted": result.rowcount})
    return result.rowcount
