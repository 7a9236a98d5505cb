"""Notification email: each member's choice per organization, and queuing the mail at commit.

A member chooses, per organization (``Membership.email_notifications``), to get each
notification mailed as it happens (``immediately``, the default), one digest a day
(``daily``) or nothing (``off``); they change it on their account page.

:func:`notify` records the new notifications' ids in the session
(:func:`mail_after_commit`); when that transaction commits, their mail is written to the
organization's outbox in the same commit, and a change that did not happen (rolled back)
is never mailed.
The daily digest is a periodic job (``app.notifications.jobs.send_daily_digests``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace

from flask import g, has_app_context
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.auth.identity import own_organizations, signed_in, signed_in_id
from app.core import cache, edits
from app.core.tenancy import require_tenant, tenant_context, unscoped
from app.extensions import db
from app.models import Issue, Membership, Notification
from app.models.base import new_id

log = logging.getLogger(__name__)

_PENDING = "_notifications_to_mail"


class PreferenceError(ValueError):
    """A refusal shown to the person as it is."""


@dataclass(frozen=True)
class EmailPreference:
    org_id: uuid.UUID
    slug: str
    name: str
    email_notifications: str


def unread_count() -> int:
    """The member's unread notifications here (once per request: the ETag and the layout use it)."""
    if "unread_count" not in g:
        user_id = signed_in().user_id

        def compute():
            return db.session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            )

        g.unread_count = cache.memoize_for_tenant(("notifications", user_id), "unread", compute, user_id)
    return g.unread_count


def _unread_count_keys() -> list[str] | None:
    """The key ``unread_count`` will read, for a page rendered anew to read it with its first read."""
    if "unread_count" in g:
        return None
    user_id = signed_in_id()
    if user_id is None:
        return None
    return cache.memoized_for_tenant_keys(("notifications", user_id), "unread", user_id)


cache.read_when_rendering(_unread_count_keys)


def email_preferences(user_id: uuid.UUID) -> list[EmailPreference]:
    """The person's choice in each of their organizations (their own memberships, across tenants)."""
    with unscoped("a person's own notification email choices, for their account page"):
        rows = db.session.execute(own_organizations(user_id, Membership.email_notifications)).all()
    return [EmailPreference(*row) for row in rows]


def set_email_preferences(
    user_id: uuid.UUID, choices: dict[uuid.UUID, str], loaded: dict[uuid.UUID, str] | None = None
) -> int:
    """Save ``{organization id: choice}`` for the person's own memberships; returns how many changed.

    Every choice is checked before anything is written; an organization the person does
    not belong to is refused. With ``loaded`` (the choices the form showed), only the choices
    the person changed are written, and one changed elsewhere meanwhile is a conflict
    (``app.core.edits.EditConflict``). The caller commits.
    """
    for value in choices.values():
        if value not in Membership.EMAIL_CHOICES:
            raise PreferenceError("Choose immediately, daily digest or off.")
    preferences = {pref.org_id: pref for pref in email_preferences(user_id)}
    if not set(choices) <= set(preferences):
        raise PreferenceError("You are not a member of that organization.")
    memberships = {}
    for org_id in choices:
        with tenant_context(org_id):
            memberships[org_id] = db.session.scalar(
                select(Membership)
                .where(Membership.user_id == user_id)
                .with_for_update(of=Membership)
                .execution_options(populate_existing=True)
            )
    current = {org_id: m.email_notifications for org_id, m in memberships.items()}
    labels = {org_id: preferences[org_id].name for org_id in choices}
    try:
        to_write = edits.merge(current, current if loaded is None else loaded, choices, labels)
    except edits.EditConflict as conflict:
        choice = Membership.EMAIL_CHOICE_LABELS
        shown = [
            replace(c, theirs=choice.get(c.theirs), yours=choice.get(c.yours)) for c in conflict.conflicts
        ]
        raise edits.EditConflict(shown, conflict.current) from None
    for org_id, value in to_write.items():
        with tenant_context(org_id):
            memberships[org_id].email_notifications = value
            db.session.flush()  # written as this tenant
    return len(to_write)


def notify(issue: Issue, actor, user_ids, kind: str, excerpt: str = "") -> None:
    """In-app notifications about ``issue`` for ``user_ids`` (never the actor), mailed by each
    recipient's choice once the transaction commits."""
    actor_id = getattr(actor, "id", None)
    recipients = {uid for uid in user_ids if uid != actor_id}
    created = []
    for user_id in recipients:
        notification = Notification(
            id=new_id(),
            user_id=user_id,
            issue_id=issue.id,
            actor_id=actor_id,
            kind=kind,
            excerpt=excerpt[:200],
        )
        db.session.add(notification)
        created.append(notification.id)
    mail_after_commit(created)


def mail_after_commit(notification_ids) -> None:
    """Mail about these new notifications (of the current tenant) goes out with this transaction.

    The ids are kept in the session; when the transaction commits, their mail is written to
    the organization's outbox in that same commit (so it is sent however Redis and the
    workers fare), and when it rolls back they are forgotten.
    """
    if not notification_ids:
        return
    pending = db.session.info.setdefault(_PENDING, {})
    pending.setdefault(str(require_tenant()), []).extend(str(i) for i in notification_ids)


@event.listens_for(Session, "before_commit")
def _write_notification_mail(session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    if not has_app_context():  # nothing to render with: the outbox sweep writes their mail
        log.warning("notification mail left to the outbox sweep: no app context at commit")
        return
    from app.notifications.jobs import mail_notifications

    for tenant_id, ids in pending.items():
        with tenant_context(tenant_id):
            mail_notifications(ids)
            session.flush()  # written as this tenant


@event.listens_for(Session, "after_soft_rollback")
def _forget_notification_mail(session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction
        session.info.pop(_PENDING, None)
