"""Keeping a BackgroundJob row in step with the RQ job that does the work."""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager

from app.extensions import db
from app.models import BackgroundJob

log = logging.getLogger(__name__)


class BackgroundJobGone(LookupError):
    """The row a job was meant to update no longer exists."""


def finished_result(background_job_id: str | uuid.UUID) -> tuple[bool, dict | None]:
    """``(True, result)`` when the job's record says it already finished.

    Jobs call this before acting: a job run again (its worker died after the work was
    done, and the job was retried) returns the recorded result and changes nothing.
    """
    job = db.session.get(BackgroundJob, uuid.UUID(str(background_job_id)))
    if job is not None and job.status == BackgroundJob.FINISHED:
        return True, job.result
    return False, None


@contextmanager
def tracked(background_job_id: str | uuid.UUID):
    """Mark the job started, yield it, and mark it failed if the body raises.

    The body reports progress with ``job.mark_progress`` + commit and ends with
    ``job.mark_finished(result)`` + commit.
    """
    job_id = uuid.UUID(str(background_job_id))
    job = db.session.get(BackgroundJob, job_id)
    if job is None:
        raise BackgroundJobGone(f"background job {job_id} does not exist")
    job.mark_started()
    db.session.commit()
    try:
        yield job
    except Exception as exc:
        db.session.rollback()
        job = db.session.get(BackgroundJob, job_id)
        if job is not None:
            job.mark_failed(f"{type(exc).__name__}: {exc}")
            db.session.commit()
        raise
