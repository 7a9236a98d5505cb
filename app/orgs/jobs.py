"""The daily deletion of invitations nobody accepted, long after their link expired."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete

from app.core.queue.queues import LOW, Period, job
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Invitation
from app.models.base import utcnow

log = logging.getLogger(__name__)

#: An expired invitation stays listed this long (admins can still resend it), then goes.
EXPIRED_INVITATIONS_KEPT_FOR = timedelta(days=30)


@job(LOW, timeout=300, period=Period("delete-expired-invitations", every_seconds=86400))
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
