"""Sending a delivery: its signed request (Standard Webhooks), one attempt and what it leaves —
the attempt in the log, success, the next attempt on the schedule, or the end.

- The request is signed as ``app.webhooks.signing`` says, anew at each attempt.
- Any 2xx is success. A redirect, any other status or no answer is a failed attempt, tried again
  after the next wait of ``SCHEDULE`` (with jitter); a ``Retry-After`` on 429 or 503 moves it
  later (at most a day). 410 Gone disables the endpoint at once. When the last attempt fails
  the endpoint is disabled and its organization's owners and admins are mailed, once.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy import select, update

from app.core import audit, outbound
from app.core.mail import public_url, send_email
from app.core.permissions import ADMIN, OWNER
from app.extensions import db
from app.models import Membership, Organization, User, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.models.base import new_id, utcnow
from app.models.webhooks import FAILED, PENDING, SUCCEEDED
from app.webhooks.signing import request_headers

#: Seconds to wait after each failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
#: Every attempt: the first and one after each wait.
MAX_ATTEMPTS = len(SCHEDULE) + 1
#: Each wait is moved by up to this fraction either way, so retries do not arrive in step.
JITTER = 0.15
#: The latest a Retry-After may move an attempt.
RETRY_AFTER_CAP = timedelta(days=1)
#: While an attempt runs its delivery is not due again; a worker killed meanwhile is retried after.
LEASE = timedelta(minutes=2)


def retry_wait(attempts: int) -> timedelta | None:
    """The wait after the ``attempts``-th failed attempt, with jitter (None: that was the last)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    seconds = SCHEDULE[attempts - 1]
    return timedelta(seconds=seconds * random.uniform(1 - JITTER, 1 + JITTER))


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as a wait, at most a day; None if unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        wait = moment - now
    return max(timedelta(0), min(wait, RETRY_AFTER_CAP))


def claim(delivery_id) -> bool:
    """Take a due delivery for one attempt (False: not due, finished, or another worker has it)."""
    now = utcnow()
    claimed = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + LEASE, attempts=WebhookDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def attempt(delivery: WebhookDelivery) -> WebhookAttempt:
    """Make the claimed attempt of ``delivery`` and record it; the caller commits."""
    endpoint = db.session.get(WebhookEndpoint, (delivery.tenant_id, delivery.endpoint_id))
    message = delivery.message
    now = utcnow()
    headers = request_headers(endpoint, message, now)
    record = WebhookAttempt(
        id=new_id(),
        delivery_id=delivery.id,
        number=delivery.attempts,
        url=endpoint.url,
        request_headers=headers,
    )
    answer = None
    if not endpoint.enabled:
        record.error = "Not sent: the endpoint is disabled."
    else:
        try:
            answer = outbound.post(endpoint.url, message.body.encode(), headers)
        except outbound.RefusedURL as exc:
            record.error = f"Not sent: {exc}"
        except outbound.RequestFailed as exc:
            record.error = str(exc)
    if answer is not None:
        record.response_status, record.response_excerpt = answer.status, answer.excerpt
        record.duration_ms = answer.duration_ms
        if 300 <= answer.status < 400:
            record.error = f"Redirected ({answer.status}); redirects are not followed."
    db.session.add(record)
    _settle(delivery, endpoint, answer, now)
    return record


def _settle(delivery: WebhookDelivery, endpoint: WebhookEndpoint, answer, now: datetime) -> None:
    """Success, the next attempt, or the end of the delivery (and maybe of the endpoint)."""
    delivery.last_status = answer.status if answer is not None else None
    if answer is not None and 200 <= answer.status < 300:
        delivery.status, delivery.finished_at, delivery.next_attempt_at = SUCCEEDED, now, None
        return
    if not endpoint.enabled:
        _finish(delivery, now)
        return
    if answer is not None and answer.status == 410:
        _finish(delivery, now)
        disable_automatically(endpoint, "The endpoint answered 410 Gone.")
        return
    wait = retry_wait(delivery.attempts)
    if wait is None:
        _finish(delivery, now)
        disable_automatically(
            endpoint, f"Every attempt of a delivery failed ({MAX_ATTEMPTS} attempts over about three days)."
        )
        return
    if answer is not None and answer.status in (429, 503):
        asked = retry_after(answer.headers.get("retry-after"), now)
        if asked is not None and asked > wait:
            wait = asked
    delivery.next_attempt_at = now + wait


def _finish(delivery: WebhookDelivery, now: datetime) -> None:
    delivery.status, delivery.finished_at, delivery.next_attempt_at = FAILED, now, None


def due_deliveries(now: datetime, limit: int) -> list[tuple]:
    """(tenant, delivery id, attempts, next attempt) of pending deliveries that are due, oldest first."""
    rows = db.session.execute(
        select(
            WebhookDelivery.tenant_id,
            WebhookDelivery.id,
            WebhookDelivery.attempts,
            WebhookDelivery.next_attempt_at,
        )
        .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return list(rows)


def fail_pending(endpoint: WebhookEndpoint, now: datetime) -> None:
    """End the endpoint's waiting deliveries (it was disabled); each can be redelivered from the log."""
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == PENDING)
        .values(status=FAILED, finished_at=now, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


def disable_automatically(endpoint: WebhookEndpoint, reason: str) -> bool:
    """Disable an endpoint that failed for good; its organization's owners and admins are mailed
    once (a second failing delivery finds it disabled already). Returns whether it was disabled."""
    now = utcnow()
    turned_off = db.session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if turned_off.rowcount != 1:
        return False
    db.session.refresh(endpoint)
    fail_pending(endpoint, now)
    audit.record("webhook.disabled_by_failure", target=endpoint, reason=reason)
    org = db.session.get(Organization, endpoint.tenant_id)
    page = public_url("webhooks.endpoint", org_slug=org.slug, webhook_endpoint_id=endpoint.id)
    admins = select(User.email).join(Membership, Membership.user_id == User.id)
    admins = admins.where(Membership.tenant_id == endpoint.tenant_id, Membership.role.in_((OWNER, ADMIN)))
    for email in sorted(db.session.scalars(admins)):
        send_email(
            email, "webhook_disabled", org_name=org.name, url=endpoint.url, reason=reason, page_url=page
        )
    return True
