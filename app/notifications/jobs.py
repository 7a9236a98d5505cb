"""Notification email: each notification as it happens, or a daily digest, by the member's choice.

A notification is mailed only while it is unread and not yet emailed; its mail is written
to the outbox and the notification marked emailed (``Notification.emailed_at``) in the
same transaction, so a digest run again after its worker died mails nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import and_, select

from app.core.dates import format_datetime
from app.core.mail import public_url, send_email
from app.core.mail_delivery import writes_missing_mail
from app.core.queue.queues import LOW, Period, exponential_backoff, job
from app.core.tenancy import require_tenant, tenant_context, unscoped
from app.extensions import db
from app.models import Membership, Notification, Organization, User
from app.models.base import utcnow

log = logging.getLogger(__name__)

#: How far back a digest looks: the last day, with an hour's grace for a run that starts late
#: (what an earlier digest mailed is marked emailed, so the overlap repeats nothing).
DIGEST_WINDOW = timedelta(hours=25)

_SENTENCES = {
    Notification.ASSIGNED: "{actor} assigned you to {ref}",
    Notification.MENTIONED: "{actor} mentioned you in {ref}",
    Notification.COMMENTED: "{actor} commented on {ref}",
}


def _item(notification: Notification, org: Organization, time_zone: str) -> dict:
    """What a mail shows of one notification, as plain values (its time in the recipient's zone)."""
    issue = notification.issue
    actor = notification.actor.name if notification.actor is not None else "Someone"
    return {
        "ref": issue.ref,
        "title": issue.title,
        "sentence": _SENTENCES[notification.kind].format(actor=actor, ref=issue.ref),
        "when": format_datetime(notification.created_at, time_zone),
        # Assignments and mentions in a description carry the title; comments carry their text.
        "excerpt": notification.excerpt if notification.excerpt != issue.title else "",
        "url": public_url("issues.show", org_slug=org.slug, issue_ref=issue.ref),
    }


def _common(org: Organization, choice: str) -> dict:
    return {
        "org_name": org.name,
        "choice": Membership.EMAIL_CHOICE_LABELS[choice].lower(),
        "notifications_url": public_url("notifications.inbox", org_slug=org.slug),
        "account_url": public_url("auth.account"),
    }


def _pending_for(ids=None, user_id=None, since=None):
    """This tenant's unread, not yet emailed notifications with their recipient and choice."""
    query = (
        select(Notification, User, Membership.email_notifications)
        .join(User, User.id == Notification.user_id)
        .join(Membership, Membership.user_id == Notification.user_id)
        .where(
            Notification.emailed_at.is_(None),
            Notification.read_at.is_(None),
            User.email_verified_at.is_not(None),
        )
        .order_by(Notification.created_at, Notification.id)
    )
    if ids is not None:
        query = query.where(Notification.id.in_(ids))
    if user_id is not None:
        query = query.where(Notification.user_id == user_id)
    if since is not None:
        query = query.where(Notification.created_at >= since)
    return db.session.execute(query).all()


def mail_notifications(notification_ids) -> int:
    """Write the mail of each of these notifications whose recipient chose "immediately"; how many.

    Runs as the notifications' organization, as the transaction that created them commits
    (``app.notifications.services.mail_after_commit``): the mail is stored in the outbox in that
    commit. A recipient who chose the digest or nothing,
    or has no confirmed address, gets no mail now. The caller commits.
    """
    org = db.session.get(Organization, require_tenant())
    ids = [_uuid(value) for value in notification_ids]
    sent = 0
    for notification, user, choice in _pending_for(ids=[i for i in ids if i is not None]):
        if choice != Membership.EMAIL_IMMEDIATELY:
            continue
        item = _item(notification, org, user.time_zone)
        send_email(user.email, "notification", name=user.name, item=item, **_common(org, choice))
        notification.emailed_at = utcnow()
        sent += 1
    return sent


def _unmailed(*columns, choice: str):
    """Unread notifications not yet mailed, of members whose email choice is ``choice``."""
    return (
        select(*columns)
        .join(
            Membership,
            and_(Membership.tenant_id == Notification.tenant_id, Membership.user_id == Notification.user_id),
        )
        .where(
            Membership.email_notifications == choice,
            Notification.emailed_at.is_(None),
            Notification.read_at.is_(None),
        )
    )


#: How far back the outbox sweep looks for notifications whose mail was never written.
UNMAILED_WINDOW = timedelta(hours=1)


@writes_missing_mail
def mail_unmailed_notifications(older_than: timedelta) -> int:
    """Write the mail of recent "immediately" notifications committed without it; how many.

    Their mail is normally written by the commit that created them; one committed where no
    app could render it is picked up here (by the outbox sweep), so none is silently skipped.
    """
    now = utcnow()
    with unscoped("outbox sweep: notifications of every organization whose mail was not written"):
        rows = db.session.execute(
            _unmailed(Notification.tenant_id, Notification.id, choice=Membership.EMAIL_IMMEDIATELY)
            .where(
                Notification.created_at >= now - UNMAILED_WINDOW,
                Notification.created_at <= now - older_than,
            )
            .limit(1000)
        ).all()
    by_tenant: dict = {}
    for tenant_id, notification_id in rows:
        by_tenant.setdefault(tenant_id, []).append(notification_id)
    written = 0
    for tenant_id, ids in by_tenant.items():
        with tenant_context(tenant_id):
            written += mail_notifications(ids)
            db.session.commit()
    return written


# Slots start at midnight UTC: the digests go out at the first tick of each day.
@job(
    LOW,
    timeout=1800,
    retry=exponential_backoff(3, first_seconds=60),
    period=Period("daily-digest", every_seconds=86400),
)
def send_daily_digests() -> int:
    """One mail per person and organization with "daily digest": the last day's unread notifications.

    Marks what it mailed as emailed, so a second run the same day sends nothing more.
    Returns how many digests were queued.
    """
    since = utcnow() - DIGEST_WINDOW
    with unscoped("daily digest: who has notifications waiting, in every organization"):
        waiting = db.session.execute(
            _unmailed(Notification.tenant_id, Notification.user_id, choice=Membership.EMAIL_DAILY)
            .where(Notification.created_at >= since)
            .distinct()
        ).all()
    digests = 0
    for tenant_id, user_id in waiting:
        with tenant_context(tenant_id):
            digests += _send_digest(user_id, since)
            db.session.commit()
    log.info("daily digests queued", extra={"digests": digests})
    return digests


def _send_digest(user_id, since) -> int:
    rows = [
        (notification, user)
        for notification, user, choice in _pending_for(user_id=user_id, since=since)
        if choice == Membership.EMAIL_DAILY
    ]
    if not rows:
        return 0
    org = db.session.get(Organization, require_tenant())
    user = rows[0][1]
    notifications = [notification for notification, _user in rows]
    send_email(
        user.email,
        "notification_digest",
        name=user.name,
        items=[_item(notification, org, user.time_zone) for notification in notifications],
        **_common(org, Membership.EMAIL_DAILY),
    )
    now = utcnow()
    for notification in notifications:
        notification.emailed_at = now
    return 1


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
