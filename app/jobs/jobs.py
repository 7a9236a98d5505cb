"""Jobs of the background-job records: the system check people start, and the weekly purge."""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta

from sqlalchemy import delete, func, select, text

from app.core.queue.queues import HIGH, LOW, Period, exponential_backoff, job
from app.core.queue.tracking import finished_result, tracked
from app.extensions import db
from app.models import BackgroundJob
from app.models.base import utcnow

log = logging.getLogger(__name__)

FINISHED_JOBS_KEPT_FOR = timedelta(days=7)


@job(HIGH, timeout=60)
def run_system_check(background_job_id: str) -> dict:
    """Prove the whole path: a worker process reaches the database and reports back.

    Run twice, the second run returns the first one's result and changes nothing.
    """
    done, result = finished_result(background_job_id)
    if done:
        return result
    with tracked(background_job_id) as job:
        started = time.perf_counter()
        job.mark_progress(30)
        db.session.commit()

        db.session.execute(text("SELECT 1"))
        tracked_jobs = db.session.scalar(select(func.count()).select_from(BackgroundJob))
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
        log.info("system check finished", extra={"background_job_id": str(job.id), **result})
        return result


@job(
    LOW,
    timeout=600,
    retry=exponential_backoff(3, first_seconds=60),
    period=Period("purge-finished-jobs", every_seconds=3600),
)
def purge_finished_jobs() -> int:
    """Delete finished and failed job records older than a week; returns how many."""
    cutoff = utcnow() - FINISHED_JOBS_KEPT_FOR
    result = db.session.execute(
        delete(BackgroundJob).where(
            BackgroundJob.status.in_([BackgroundJob.FINISHED, BackgroundJob.FAILED]),
            BackgroundJob.finished_at < cutoff,
        )
    )
    db.session.commit()
    log.info("purged finished background jobs", extra={"deleted": result.rowcount})
    return result.rowcount
