"""Publishing an event to the organization's webhook endpoints: the one way in for every feature.

``publish("issue.updated", lambda: issue_data(issue))`` looks up (in the cache, no query) which
enabled endpoints want the event; when none does it returns at once and the payload is never
built. Otherwise it writes the message and one delivery per endpoint in the caller's
transaction (a transactional outbox: a rolled-back change sends nothing), and after the commit
queues one delivery job per delivery, by id. A delivery whose job could not be queued (Redis
away) is sent by the periodic sweep of due deliveries.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC

from flask import has_app_context
from redis import RedisError
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app import flags
from app.core import cache
from app.core.queue.queues import enqueue
from app.core.tenancy import require_tenant, tenant_context
from app.extensions import db
from app.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from app.models.base import new_id, utcnow

log = logging.getLogger(__name__)

#: Event types endpoints may subscribe to, with what each means (the form's checkboxes).
EVENT_TYPES = {
    "issue.created": "An issue was created",
    "issue.updated": "An issue changed: its fields, state, assignees or labels",
    "comment.created": "A comment was added to an issue",
}
#: Sent by "Send test event", to one endpoint whatever it subscribes to.
TEST_EVENT = "webhook.test"

DELIVERY_JOB = "app.webhooks.jobs.deliver_webhook"
_PENDING = "_webhook_deliveries_to_queue"


def _subscriptions() -> dict[str, list[str]]:
    """Event type -> ids of the enabled endpoints that want it (read from the database)."""
    wanted: dict[str, list[str]] = {}
    rows = db.session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(WebhookEndpoint.disabled_at.is_(None))
    )
    for endpoint_id, event_types in rows:
        for event_type in event_types or ():
            wanted.setdefault(event_type, []).append(str(endpoint_id))
    return wanted


def subscribers(event_type: str) -> list[str]:
    """Ids of the current organization's enabled endpoints subscribed to ``event_type``.

    Memoized per organization under the ``webhooks`` topic, which every write to an endpoint
    moves at commit: publishing to an organization without endpoints costs no query.
    """
    return cache.memoize_for_tenant("webhooks", "webhook-subscriptions", _subscriptions).get(event_type, [])


def message_body(event_type: str, data: dict) -> str:
    """The JSON body of an event (Standard Webhooks: type, timestamp, data)."""
    timestamp = utcnow().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"))


def publish(event_type: str, data: dict | Callable[[], dict]) -> int:
    """Send ``event_type`` to every enabled endpoint subscribed to it; returns how many.

    ``data`` is the event's data, or a function returning it (called only when some endpoint
    wants the event). Nothing is written when none does.
    """
    if not flags.enabled("webhooks", require_tenant()):
        return 0  # not rolled out to this organization: its endpoints get nothing
    endpoint_ids = subscribers(event_type)
    if not endpoint_ids:
        return 0
    message = add_message(event_type, data() if callable(data) else data)
    for endpoint_id in endpoint_ids:
        add_delivery(message, endpoint_id)
    return len(endpoint_ids)


def add_message(event_type: str, data: dict) -> WebhookMessage:
    message = WebhookMessage(id=new_id(), event_type=event_type, body=message_body(event_type, data))
    db.session.add(message)
    db.session.flush()  # before its deliveries, which refer to it
    return message


def add_delivery(message: WebhookMessage, endpoint_id, redelivery_of_id=None) -> WebhookDelivery:
    """A delivery of ``message`` due now; its job is queued once the transaction commits."""
    delivery = WebhookDelivery(
        id=new_id(),
        endpoint_id=uuid.UUID(str(endpoint_id)),
        message_id=message.id,
        next_attempt_at=utcnow(),
        redelivery_of_id=redelivery_of_id,
    )
    db.session.add(delivery)
    db.session.info.setdefault(_PENDING, []).append(
        (str(require_tenant()), str(delivery.id), job_id(delivery.id, 0, delivery.next_attempt_at))
    )
    return delivery


def job_id(delivery_id, attempts: int, next_attempt_at) -> str:
    """The delivery job's id for its next attempt: queued twice (after the commit and by the
    sweep), the same attempt is queued once."""
    return f"webhook-{delivery_id}-{attempts}-{int(next_attempt_at.timestamp() * 1000)}"


def queue_delivery(tenant_id, delivery_id: str, delivery_job_id: str) -> None:
    with tenant_context(tenant_id):
        enqueue(
            DELIVERY_JOB, delivery_id, job_id=delivery_job_id, description=f"webhook delivery {delivery_id}"
        )


@event.listens_for(Session, "after_commit")
def _queue_deliveries(session) -> None:
    """Queue the committed deliveries; if Redis is away the sweep sends them."""
    pending = session.info.pop(_PENDING, None)
    if not pending or not has_app_context():
        return
    for index, (tenant_id, delivery_id, delivery_job_id) in enumerate(pending):
        try:
            queue_delivery(tenant_id, delivery_id, delivery_job_id)
        except RedisError as exc:
            log.warning(
                "webhook deliveries not queued; the sweep sends them",
                extra={"deliveries": len(pending) - index, "error": str(exc)},
            )
            return


@event.listens_for(Session, "after_soft_rollback")
def _forget_deliveries(session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
