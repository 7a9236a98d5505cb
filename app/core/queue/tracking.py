"""Keeping a BackgroundJob row in step with the RQ job that does the work."""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager

from app.extensions import db
from app.models import BackgroundJob, Task

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
    with _tracking(
        lambda: db.session.get(BackgroundJob, job_id), f"background job {job_id} does not exist", _error_text
    ) as job:
        yield job


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def _tracking(load, missing: str, describe):
    """The one lifecycle of a tracked row: started, then failed with ``describe(error)`` if the
    body raises (the row is loaded afresh after the rollback)."""
    row = load()
    if row is None:
        raise BackgroundJobGone(missing)
    row.mark_started()
    db.session.commit()
    try:
        yield row
    except Exception as exc:
        db.session.rollback()
        row = load()
        if row is not None:
            row.mark_failed(describe(exc))
            db.session.commit()
        raise


# --- an organization's tasks ----------------------------------------------------------------


class TaskProgress:
    """Reports a running task's progress, committing at most every ``every`` units of work."""

    def __init__(self, task: Task, total: int, every: int = 1, noun: str = "items"):
        self.task, self.total, self.every, self.noun = task, max(0, total), max(1, every), noun
        self._reported = -1

    def __call__(self, done: int, message: str | None = None) -> None:
        if done != self.total and done - self._reported < self.every:
            return
        self._reported = done
        self.task.mark_progress(done, self.total, message or f"{done:,} of {self.total:,} {self.noun}")
        db.session.commit()


def finished_task_result(task_id: str | uuid.UUID) -> tuple[bool, dict | None]:
    """``(True, result)`` when the task already finished (a retried job then changes nothing)."""
    task = Task.get_scoped(db.session, task_id)
    if task is not None and task.status == Task.FINISHED:
        return True, task.result
    return False, None


@contextmanager
def tracked_task(task_id: str | uuid.UUID):
    """Mark the organization's task started, yield it, and mark it failed if the body raises.

    Runs inside the job's tenant (the worker sets it from the job). The body reports
    progress (``TaskProgress``) and ends with ``task.mark_finished(result)`` + commit. An
    error people can act on is raised as ``TaskError``: its message is shown as it is;
    other errors show their type and message.
    """
    with _tracking(
        lambda: Task.get_scoped(db.session, task_id),
        f"task {task_id} does not exist in this organization",
        lambda exc: str(exc) if isinstance(exc, TaskError) else _error_text(exc),
    ) as task:
        yield task


class TaskError(Exception):
    """A failure to show to people as it is ("the file is not UTF-8 text")."""
