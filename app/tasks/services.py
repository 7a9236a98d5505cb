"""Starting background work people follow on a page, and who may follow it."""

from __future__ import annotations

import logging
import uuid

from redis.exceptions import RedisError
from sqlalchemy import select

from app.auth.identity import signed_in
from app.core.database import commit_now
from app.core.permissions import can
from app.core.queue.queues import HIGH, enqueue
from app.core.tenancy import current_tenant_id, unscoped
from app.extensions import db
from app.models import Task

log = logging.getLogger(__name__)

SYSTEM_CHECK = "system_check"
#: Why operator pages read and write unscoped: the system's own tasks belong to no organization.
SYSTEM_WORK = "the system's own tasks (tenant_id NULL), for operators"


class QueueUnavailable(RuntimeError):
    """The task was recorded but could not be queued (Redis unreachable); it is marked failed."""

    def __init__(self, task: Task):
        super().__init__("the job queue is unavailable")
        self.task = task


def start_task(
    kind: str,
    func: str,
    *args,
    description: str,
    task_id: uuid.UUID | None = None,
    queue: str | None = None,
    **kwargs,
) -> Task:
    """Record a task and queue ``func(task_id, *args, **kwargs)``.

    Inside an organization the task is the organization's, the job runs as it and the task
    records the member who started it; outside one (the operators' pages) it is the
    system's own work. The task's id is the job's id, so the same task is never queued
    twice. A ``task_id`` derived from what the task does makes starting it idempotent: a
    second start with the same id fails at commit (``IntegrityError``), and the caller
    reads the existing task.
    """
    account = signed_in()
    in_organization = current_tenant_id() is not None
    task = Task(
        kind=kind,
        description=description,
        created_by_id=account.user_id if account and in_organization else None,
    )
    if task_id is not None:
        task.id = task_id
    db.session.add(task)
    commit_now("the job reads the task row: it must exist before the job is queued")
    try:
        enqueue(func, str(task.id), *args, queue=queue, job_id=str(task.id), **kwargs)
    except RedisError as exc:
        log.warning("could not enqueue a task", extra={"kind": kind, "error": str(exc)})
        task.mark_failed("The job queue is unavailable; nothing was done. Try again in a moment.")
        commit_now("the failure is what the person sees, whatever the caller answers")
        raise QueueUnavailable(task) from exc
    return task


def start_system_check() -> Task:
    """Record a system check (the system's own work) and put it on the high-priority queue."""
    with unscoped(SYSTEM_WORK):
        try:
            return start_task(
                SYSTEM_CHECK, "app.tasks.jobs.run_system_check", description="System check", queue=HIGH
            )
        except QueueUnavailable as exc:
            db.session.refresh(exc.task)  # loaded here: outside, loading it needs an organization
            raise


def visible_task_or_none(task_id) -> Task | None:
    """The task, if the person may follow it, else None.

    Inside an organization: the member's own task, or any of the organization's when they
    manage it. Outside one only the system's own work is found; the pages that show it are
    for operators.
    """
    if current_tenant_id() is None:
        with unscoped(SYSTEM_WORK):
            return Task.get_scoped(db.session, task_id)
    task = Task.get_scoped(db.session, task_id)
    if task is None:
        return None
    account = signed_in()
    if can("org.update") or (account is not None and task.created_by_id == account.user_id):
        return task
    return None


#: Tasks started by viewing a page (reports) rather than asked for: not listed.
UNLISTED_KINDS = ("report",)


def recent_tasks(kind: str | None = None, limit: int = 20) -> list[Task]:
    """The member's recent tasks (every member's for those who manage the organization)."""
    query = select(Task).order_by(Task.created_at.desc()).limit(limit)
    if kind is not None:
        query = query.where(Task.kind == kind)
    else:
        query = query.where(Task.kind.not_in(UNLISTED_KINDS))
    if not can("org.update"):
        query = query.where(Task.created_by_id == signed_in().user_id)
    return list(db.session.scalars(query))
