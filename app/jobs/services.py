"""Starting background jobs that people watch on a page."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from app.core.database import commit_now
from app.core.queue.queues import HIGH, enqueue
from app.extensions import db
from app.models import BackgroundJob

log = logging.getLogger(__name__)


class QueueUnavailable(RuntimeError):
    """The job was recorded but could not be queued (Redis unreachable)."""

    def __init__(self, job: BackgroundJob):
        super().__init__("the job queue is unavailable")
        self.job = job


def start_system_check() -> BackgroundJob:
    """Record a system check and put it on the high-priority queue."""
    job = BackgroundJob(kind="system_check", description="System check")
    db.session.add(job)
    commit_now("the job reads the system check row: it must exist before the job is queued")
    try:
        enqueue("app.jobs.jobs.run_system_check", str(job.id), queue=HIGH, job_id=str(job.id))
    except RedisError as exc:
        log.warning("could not enqueue system check", extra={"error": str(exc)})
        job.mark_failed("The job queue is unavailable; nothing was run.")
        commit_now("the failure is what the person sees, whatever the caller answers")
        raise QueueUnavailable(job) from exc
    return job
