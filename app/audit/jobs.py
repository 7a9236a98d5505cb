"""The audit log's periodic jobs: an hourly signed checkpoint of every organization's chain, and the
daily deletion of entries older than each organization keeps them."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.audit.chain import ChainBroken, apply_retention, sign_checkpoint
from app.core.queue.queues import LOW, Period, job
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Organization

log = logging.getLogger(__name__)


def _organization_ids() -> list:
    with unscoped("housekeeping: the audit log of every organization"):
        return list(db.session.scalars(select(Organization.id).order_by(Organization.id)))


@job(LOW, timeout=600, period=Period("audit-checkpoint", every_seconds=3600))
def sign_audit_checkpoints() -> int:
    """Sign a checkpoint of each organization's audit chain that moved since its last; how many.
    A chain that no longer follows its last checkpoint is logged as an error and left unsigned."""
    signed = 0
    for org_id in _organization_ids():
        with tenant_context(org_id):
            try:
                if sign_checkpoint(org_id) is not None:
                    signed += 1
            except ChainBroken as exc:
                problem = {"tenant_id": str(org_id), "problem": str(exc)}
                log.error("audit chain broken: not signed", extra=problem)
            db.session.commit()
    log.info("audit checkpoints signed", extra={"signed": signed})
    return signed


@job(LOW, timeout=1800, period=Period("audit-retention", every_seconds=86400))
def apply_audit_retention() -> int:
    """Delete the audit entries each organization no longer keeps (signing the new anchor); how many."""
    deleted = 0
    for org_id in _organization_ids():
        with tenant_context(org_id):
            deleted += apply_retention(org_id)
            db.session.commit()
    log.info("old audit entries deleted", extra={"deleted": deleted})
    return deleted
