"""Webhook jobs: one attempt of a delivery, run in its organization's lane, and the sweep that
queues every delivery whose next attempt is due (retries, and deliveries never queued).

Retries are the delivery's own (``next_attempt_at``, ``app.webhooks.delivery.SCHEDULE``), not
RQ's: a job makes one attempt, records it and commits. A job queued twice for the same attempt,
or for a delivery another worker holds, finds nothing to claim and returns.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from redis import RedisError
from sqlalchemy import delete, select

from app.core.queue.queues import DEFAULT, HIGH, LOW, Period, job
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import WebhookAttempt, WebhookDelivery, WebhookMessage
from app.models.base import utcnow
from app.models.webhooks import PENDING
from app.webhooks import delivery as deliveries
from app.webhooks.events import job_id, queue_delivery

log = logging.getLogger(__name__)

#: Due deliveries one sweep queues at most (the next sweep takes the rest).
SWEEP_BATCH = 500
#: How long the delivery log keeps a delivery that ended, with its attempts and message.
LOG_KEPT_FOR = timedelta(days=30)


@job(DEFAULT, timeout=60)
def deliver_webhook(delivery_id: str) -> str:
    """Make the due attempt of one delivery, as its organization; returns the delivery's status."""
    delivery_id = uuid.UUID(str(delivery_id))
    if not deliveries.claim(delivery_id):
        db.session.rollback()
        return "not due"
    db.session.commit()  # the claim holds while the request is out
    delivery = WebhookDelivery.get_scoped(db.session, delivery_id)
    deliveries.attempt(delivery)
    db.session.commit()
    return delivery.status


@job(HIGH, timeout=60, period=Period("webhook-deliveries", every_seconds=5))
def queue_due_webhook_deliveries(now=None) -> int:
    """Queue a job for each delivery, of every organization, whose next attempt is due."""
    with unscoped("webhook sweep: due deliveries of every organization"):
        due = deliveries.due_deliveries(now or utcnow(), SWEEP_BATCH)
    db.session.rollback()
    queued = 0
    for tenant_id, delivery_id, attempts, next_attempt_at in due:
        try:
            queue_delivery(tenant_id, str(delivery_id), job_id(delivery_id, attempts, next_attempt_at))
        except RedisError as exc:
            log.warning("webhook deliveries not queued", extra={"error": str(exc)})
            break
        queued += 1
    return queued


@job(LOW, timeout=600, period=Period("purge-webhook-log", every_seconds=86400))
def purge_webhook_log(now=None) -> int:
    """Delete every organization's deliveries that ended over 30 days ago, with their attempts,
    and the messages left without a delivery; returns how many deliveries."""
    cutoff = (now or utcnow()) - LOG_KEPT_FOR
    old = select(WebhookDelivery.id).where(
        WebhookDelivery.status != PENDING, WebhookDelivery.created_at < cutoff
    )
    with unscoped("housekeeping: old webhook deliveries of every organization"):
        db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(old)))
        deleted = db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(old))).rowcount
        in_use = select(WebhookDelivery.message_id)
        db.session.execute(
            delete(WebhookMessage).where(WebhookMessage.created_at < cutoff, WebhookMessage.id.not_in(in_use))
        )
        db.session.commit()
    log.info("old webhook deliveries deleted", extra={"deleted": deleted})
    return deleted
