"""The API's housekeeping: the answers kept for ``Idempotency-Key`` are deleted after their day."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete

from app.core.queue.queues import LOW, Period, job
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import ApiIdempotentRequest
from app.models.base import utcnow

log = logging.getLogger(__name__)


@job(LOW, timeout=300, period=Period("purge-idempotency-keys", every_seconds=3600))
def purge_idempotent_requests() -> int:
    """Delete kept answers (of every organization) older than ``API_IDEMPOTENCY_SECONDS``;
    returns how many."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["API_IDEMPOTENCY_SECONDS"])
    with unscoped("housekeeping: kept API answers of every organization"):
        result = db.session.execute(
            delete(ApiIdempotentRequest).where(ApiIdempotentRequest.created_at < cutoff)
        )
        db.session.commit()
    log.info("purged kept API answers", extra={"deleted": result.rowcount})
    return result.rowcount
