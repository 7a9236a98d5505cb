"""Tenant export jobs: one organization's export, the nightly backup of every organization, and
the hourly deletion of expired export files."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select

from app.core.queue.queues import LOW, Period, enqueue, exponential_backoff, job
from app.core.queue.tracking import TaskProgress, finished_result, tracked
from app.core.storage import file_store
from app.core.tenancy import require_tenant, tenant_context
from app.exports import services as exports
from app.exports.writer import count_rows, snapshot_session, write_export
from app.extensions import db
from app.models import Organization, Task
from app.models.base import utcnow

log = logging.getLogger(__name__)

#: A half-written file (its writer was killed) older than this is abandoned.
PARTIAL_FILES_KEPT_FOR = timedelta(days=1)


# Long, low priority; retried after a lost worker.
@job(LOW, timeout=3 * 3600, retry=exponential_backoff(2, first_seconds=300))
def export_organization(task_id: str, nightly: bool = False) -> dict:
    """Write the current organization's export zip (runs as the organization).

    A second run of a finished task returns its result and writes nothing. A nightly
    export has one file per day: run again that day, it replaces it.
    """
    done, result = finished_result(task_id)
    if done:
        return result
    with tracked(task_id) as task:
        organization = db.session.get(Organization, require_tenant())
        name = exports.export_file_name(organization.slug, utcnow(), nightly)
        key = exports.export_key(name)
        store = file_store()
        with snapshot_session() as reader:
            counts = count_rows(reader)
            total = sum(counts.values())
            progress = TaskProgress(task, total, every=max(1000, total // 100), noun="rows")
            progress(0, "Starting")
            with store.open_write(key) as stream:
                written = write_export(stream, reader, organization, progress)
        rows = sum(written.values())
        result = {
            "file": name,
            "key": key,
            "size": store.path(key).stat().st_size,
            "rows": rows,
            "tables": written,
            "nightly": nightly,
        }
        task.mark_finished(result, message=f"Exported {rows:,} rows.")
        db.session.commit()
        log.info("organization exported", extra={"task_id": task_id, "file": name, "rows": rows})
        return result


# Each organization's backup, once a day (the slot starts at midnight UTC).
@job(
    LOW,
    timeout=900,
    retry=exponential_backoff(3, first_seconds=60),
    period=Period("nightly-exports", every_seconds=86400),
)
def enqueue_nightly_exports() -> int:
    """Queue today's backup of every organization; returns how many were queued.

    Each one is an export task of its organization (started by nobody), queued in the
    organization's own lane so the organizations take turns. The task's id, and so the job
    id, is derived from the organization and the day: run twice the same day, this queues
    nothing more (a task recorded but never queued, Redis being away, is queued again).
    """
    day = utcnow().date()
    organizations = db.session.execute(select(Organization.id).order_by(Organization.id)).scalars().all()
    queued = 0
    for org_id in organizations:
        with tenant_context(org_id):
            task_id = exports.nightly_task_id(org_id, day)
            task = Task.get_scoped(db.session, task_id)
            if task is None:
                task = Task(
                    id=task_id,
                    kind=exports.KIND,
                    description=f"Nightly export {day.isoformat()}",
                    created_by_id=None,
                )
                db.session.add(task)
                db.session.commit()
            elif task.status != Task.QUEUED:
                continue
            try:
                enqueue(exports.JOB, str(task_id), True, job_id=str(task_id))
            except RedisError:
                db.session.rollback()
                raise
            queued += 1
    log.info("nightly exports queued", extra={"organizations": len(organizations), "queued": queued})
    return queued


@job(LOW, timeout=900, period=Period("delete-expired-exports", every_seconds=3600))
def delete_expired_exports() -> int:
    """Delete every organization's export files older than ``EXPORT_RETENTION_DAYS``; how many."""
    store = file_store()
    retention = current_app.config["EXPORT_RETENTION_DAYS"] * 86400
    tenants = store.root / "t"
    deleted = 0
    if tenants.is_dir():
        for tenant in sorted(tenants.iterdir()):
            directory = tenant / "exports"
            if not directory.is_dir():
                continue
            deleted += store.delete_older_than(f"t/{tenant.name}/exports", retention)
            limit = time.time() - PARTIAL_FILES_KEPT_FOR.total_seconds()
            for partial in directory.glob(".partial-*"):
                if partial.stat().st_mtime < limit:
                    partial.unlink(missing_ok=True)
    log.info("expired exports deleted", extra={"deleted": deleted})
    return deleted
