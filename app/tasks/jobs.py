"""Jobs of the task records: the system check operators start, and deleting tasks that ended long ago."""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from sqlalchemy import case, delete, func, select, text

from app.core.queue.queues import HIGH, LOW, Period, exponential_backoff, job
from app.core.queue.tracking import finished_result, tracked
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Task
from app.models.base import utcnow
from app.tasks.services import SYSTEM_WORK

log = logging.getLogger(__name__)

#: Finished and failed tasks stay on their pages this long (imports, exports)…
TASKS_KEPT_FOR = timedelta(days=30)
#: …except report computations, started by viewing the reports, which nobody revisits.
REPORT_TASKS_KEPT_FOR = timedelta(days=1)
#: The system's own tasks (system checks) are kept a week.
FINISHED_JOBS_KEPT_FOR = timedelta(days=7)


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


@job(HIGH, timeout=60)
def run_system_check(task_id: str) -> dict:
    """Prove the whole path: a worker process reaches the database and reports back.

    Run twice, the second run returns the first one's result and changes nothing. The check
    is the system's own task (no organization): it runs unscoped, and counts only such tasks.
    """
    with unscoped(SYSTEM_WORK):
        return _run_system_check(task_id)


def _run_system_check(task_id: str) -> dict:
    done, result = finished_result(task_id)
    if done:
        return result
    with tracked(task_id) as job:
        started = time.perf_counter()
        job.mark_progress(30)
        db.session.commit()

        db.session.execute(text("SELECT 1"))
        system_tasks = select(func.count()).select_from(Task).where(Task.tenant_id.is_(None))
        tracked_jobs = db.session.scalar(system_tasks)
        job.mark_progress(70)
        db.session.commit()

        result = {
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "database": db.engine.dialect.name,
            "tracked_jobs": tracked_jobs,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        job.mark_finished(result)
        db.session.commit()
        log.info("system check finished", extra={"task_id": str(job.id), **result})
        return result


@job(
    LOW,
    timeout=600,
    retry=exponential_backoff(3, first_seconds=60),
    period=Period("purge-finished-jobs", every_seconds=3600),
)
def purge_finished_jobs() -> int:
    """Delete the system's finished and failed tasks older than a week; returns how many.

    The organizations' tasks are ``delete_old_tasks``'s.
    """
    cutoff = utcnow() - FINISHED_JOBS_KEPT_FOR
    with unscoped(SYSTEM_WORK):
        result = db.session.execute(
            delete(Task).where(
                Task.tenant_id.is_(None),
                Task.status.in_([Task.FINISHED, Task.FAILED]),
                Task.finished_at < cutoff,
            )
        )
        db.session.commit()
    log.info("purged the system's finished tasks", extra={"deleted": result.rowcount})
    return result.rowcount
