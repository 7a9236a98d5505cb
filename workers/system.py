"""Jobs that keep the system itself healthy."""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from sqlalchemy import delete, func, select, text

from app.core.queue.tracking import finished_result, tracked
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Task
from app.models.base import utcnow
from app.tasks.services import SYSTEM_WORK

log = logging.getLogger(__name__)

FINISHED_JOBS_KEPT_FOR = timedelta(days=7)


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


def purge_finished_jobs() -> int:
    """Delete the system's finished and failed tasks older than a week; returns how many.

    The organizations' tasks are ``housekeeping.delete_old_tasks``'s.
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
