"""Keeping a Task row in step with the RQ job that does the work."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from app.extensions import db
from app.models import Task


class TaskGone(LookupError):
    """The row a job was meant to update no longer exists."""


class TaskError(Exception):
    """A failure to show to people as it is ("the file is not UTF-8 text")."""


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


def finished_result(task_id: str | uuid.UUID) -> tuple[bool, dict | None]:
    """``(True, result)`` when the task's record says it already finished.

    Jobs call this before acting: a job run again (its worker died after the work was
    done, and the job was retried) returns the recorded result and changes nothing.
    """
    task = Task.get_scoped(db.session, task_id)
    if task is not None and task.status == Task.FINISHED:
        return True, task.result
    return False, None


@contextmanager
def tracked(task_id: str | uuid.UUID):
    """Mark the task started, yield it, and mark it failed if the body raises.

    Runs inside the job's tenant (the worker sets it from the job; none for the system's
    own work), so only that tenant's task is found. The body reports progress
    (``TaskProgress``, or ``task.mark_progress`` + commit) and ends with
    ``task.mark_finished(result)`` + commit. An error people can act on is raised as
    ``TaskError``: its message is shown as it is; other errors show their type and message.
    The row is loaded afresh after the rollback that follows an error.
    """
    task = Task.get_scoped(db.session, task_id)
    if task is None:
        raise TaskGone(f"task {task_id} does not exist here")
    task.mark_started()
    db.session.commit()
    try:
        yield task
    except Exception as exc:
        db.session.rollback()
        task = Task.get_scoped(db.session, task_id)
        if task is not None:
            task.mark_failed(str(exc) if isinstance(exc, TaskError) else f"{type(exc).__name__}: {exc}")
            db.session.commit()
        raise
