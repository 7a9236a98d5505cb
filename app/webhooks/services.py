"""An organization's webhook endpoints: adding, changing, rotating the secret, turning on and off,
removing, a test event and redelivery. Each change is audited; the view commits."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from app.core import audit, outbound
from app.extensions import db
from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from app.models.base import new_id, utcnow
from app.webhooks import delivery as deliveries
from app.webhooks.events import EVENT_TYPES, TEST_EVENT, add_delivery, add_message
from app.webhooks.signing import ROTATION_OVERLAP, new_secret

#: Endpoints an organization may have.
MAX_ENDPOINTS = 20
#: Deliveries the endpoint's log shows on a page.
LOG_PAGE = 25


class EndpointError(ValueError):
    """A refusal shown on the form as it is."""


def endpoints_of_tenant() -> list[WebhookEndpoint]:
    return list(db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))


def _checked(url: str, event_types: list[str]) -> tuple[str, list[str]]:
    url = (url or "").strip()
    try:
        outbound.check_url(url)
    except outbound.RefusedURL as exc:
        raise EndpointError(str(exc)) from exc
    wanted = [name for name in EVENT_TYPES if name in set(event_types)]
    if not wanted:
        raise EndpointError("Choose at least one event.")
    return url, wanted


def create(url: str, description: str, event_types: list[str]) -> WebhookEndpoint:
    """A new endpoint, on, with a new secret."""
    url, event_types = _checked(url, event_types)
    if db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) >= MAX_ENDPOINTS:
        raise EndpointError(f"An organization has at most {MAX_ENDPOINTS} endpoints.")
    endpoint = WebhookEndpoint(
        id=new_id(),
        url=url,
        description=(description or "").strip(),
        event_types=event_types,
        secret=new_secret(),
    )
    db.session.add(endpoint)
    db.session.flush()
    audit.record("webhook.created", target=endpoint, url=url, events=event_types)
    return endpoint


def update(endpoint: WebhookEndpoint, url: str, description: str, event_types: list[str]) -> list[str]:
    """Change what the form shows; returns the names of what changed (audited when anything did)."""
    url, event_types = _checked(url, event_types)
    given = {"url": url, "description": (description or "").strip(), "event_types": event_types}
    changed = [name for name, value in given.items() if getattr(endpoint, name) != value]
    for name in changed:
        setattr(endpoint, name, given[name])
    if changed:
        audit.record("webhook.updated", target=endpoint, changed=changed, url=url, events=event_types)
    return changed


def rotate_secret(endpoint: WebhookEndpoint) -> None:
    """A new secret; the one before still signs (as a second signature) for a day."""
    now = utcnow()
    endpoint.previous_secret, endpoint.previous_secret_expires_at = endpoint.secret, now + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    audit.record("webhook.secret_rotated", target=endpoint)


def previous_secret_until(endpoint: WebhookEndpoint):
    """Until when the secret before the last rotation still signs (None: it no longer does)."""
    until = endpoint.previous_secret_expires_at
    return until if endpoint.previous_secret and until is not None and until > utcnow() else None


def enable(endpoint: WebhookEndpoint) -> None:
    if endpoint.disabled_at is not None:
        endpoint.disabled_at = endpoint.disabled_reason = None
        audit.record("webhook.enabled", target=endpoint)


def disable(endpoint: WebhookEndpoint) -> None:
    """Turn the endpoint off; its waiting deliveries end (they can be redelivered from the log)."""
    if endpoint.disabled_at is None:
        now = utcnow()
        endpoint.disabled_at, endpoint.disabled_reason = now, "Disabled by an admin."
        deliveries.fail_pending(endpoint, now)
        audit.record("webhook.disabled", target=endpoint)


def remove(endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries and their attempts."""
    ids = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    audit.record("webhook.deleted", target=endpoint, url=endpoint.url)
    db.session.delete(endpoint)


def send_test(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``webhook.test`` event to this endpoint only (queued after the commit)."""
    if not endpoint.enabled:
        raise EndpointError("Enable the endpoint first.")
    message = add_message(
        TEST_EVENT, {"endpoint_id": str(endpoint.id), "message": "A test event from Worklane."}
    )
    db.session.flush()
    return add_delivery(message, endpoint.id)


def redeliver(endpoint: WebhookEndpoint, original: WebhookDelivery) -> WebhookDelivery:
    """A new delivery of the same message (same ``webhook-id``), due now, with its own retries."""
    if not endpoint.enabled:
        raise EndpointError("Enable the endpoint first.")
    new = add_delivery(original.message, endpoint.id, redelivery_of_id=original.id)
    audit.record("webhook.redelivered", target=endpoint, event=original.message.event_type)
    return new


def delivery_log(endpoint: WebhookEndpoint, page: int = 1) -> tuple[list[tuple], bool]:
    """A page of the endpoint's deliveries with their messages, newest first; and whether there are more."""
    rows = db.session.execute(
        select(WebhookDelivery, WebhookMessage)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .offset((page - 1) * LOG_PAGE)
        .limit(LOG_PAGE + 1)
    ).all()
    return [tuple(row) for row in rows[:LOG_PAGE]], len(rows) > LOG_PAGE


def endpoint_delivery(endpoint: WebhookEndpoint, delivery_id) -> WebhookDelivery | None:
    """The endpoint's delivery ``delivery_id`` (None: no such delivery of this endpoint)."""
    found = WebhookDelivery.get_scoped(db.session, delivery_id)
    return found if found is not None and found.endpoint_id == endpoint.id else None


def attempts_of(delivery: WebhookDelivery) -> list[WebhookAttempt]:
    statement = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
    return list(db.session.scalars(statement.order_by(WebhookAttempt.number.desc())))
