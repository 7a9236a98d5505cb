"""Periodic clean-ups (``workers.scheduler.PERIODIC_JOBS``): each deletes only what has expired,
so running one twice, or late, deletes nothing more.

Nothing else needs cleaning: sessions are Redis keys written with an expiry (nothing indexes
them; visitors have none), rate-limit counters expire the same way, sign-up, reset and
download links are signed tokens stored nowhere but in the outbox's mail (purged a day
after it was sent), and finished RQ jobs are purged by ``purge-finished-jobs``.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import case, delete

from app.core.storage import file_store
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Invitation, OutboxMail, Task, TenantOutboxMail
from app.models.base import utcnow

log = logging.getLogger(__name__)

#: An expired invitation stays listed this long (admins can still resend it), then goes.
EXPIRED_INVITATIONS_KEPT_FOR = timedelta(days=30)
#: A half-written file (its writer was killed) older than this is abandoned.
PARTIAL_FILES_KEPT_FOR = timedelta(days=1)
#: Finished and failed tasks stay on their pages this long (imports, exports)…
TASKS_KEPT_FOR = timedelta(days=30)
#: …except report computations, started by viewing the reports, which nobody revisits.
REPORT_TASKS_KEPT_FOR = timedelta(days=1)
#: Sent mail is kept a day (its links, reset links included, should not linger in the database)…
SENT_MAIL_KEPT_FOR = timedelta(days=1)
#: …mail given up a week, for an operator to see why.
FAILED_MAIL_KEPT_FOR = timedelta(days=7)


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


def delete_expired_invitations() -> int:
    """Delete invitations never accepted whose link expired over 30 days ago; how many."""
    cutoff = utcnow() - EXPIRED_INVITATIONS_KEPT_FOR
    with unscoped("housekeeping: expired invitations of every organization"):
        result = db.session.execute(
            delete(Invitation).where(Invitation.accepted_at.is_(None), Invitation.expires_at < cutoff)
        )
        db.session.commit()
    log.info("expired invitations deleted", extra={"deleted": result.rowcount})
    return result.rowcount


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


def purge_sent_mail() -> int:
    """Delete outbox mail sent over a day ago and mail given up over a week ago; how many."""
    now = utcnow()
    deleted = 0
    with unscoped("housekeeping: sent mail of every organization"):
        for model in (OutboxMail, TenantOutboxMail):
            sent = (model.status == model.SENT) & (model.sent_at < now - SENT_MAIL_KEPT_FOR)
            failed = (model.status == model.FAILED) & (model.due_at < now - FAILED_MAIL_KEPT_FOR)
            deleted += db.session.execute(delete(model).where(sent | failed)).rowcount
        db.session.commit()
    log.info("sent mail purged", extra={"deleted": deleted})
    return deleted
