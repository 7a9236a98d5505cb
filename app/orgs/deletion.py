"""Deleting an organization: an owner asks, it waits read-only for a grace period, then goes.

An owner confirms with their password and the organization's name typed out. The organization
then stays readable but read-only for ``GRACE`` (``app/orgs/context.py`` refuses every change
but the cancelling), every owner is mailed, and any owner may cancel until the time is up.
After it, the hourly job ``delete_due_organizations`` deletes the organization's rows table by
table in batches of ``BATCH`` (each batch its own transaction, so no lock is held for long and
a job cut short resumes where it stopped), its files (uploads, exports and the nightly backups,
all under its prefix of the file store), and finally the organization itself. Its address is
held for ``SLUG_HELD_FOR``: links to the old pages never lead to someone else's organization.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from datetime import timedelta

from sqlalchemy import delete, select, tuple_

from app.auth import two_factor
from app.core import audit, cache
from app.core.cache_bumps import bump_versions
from app.core.dates import format_datetime
from app.core.mail import public_url, send_email
from app.core.queue.queues import LOW, Period, job
from app.core.security import verify_password
from app.core.storage import file_store
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import HeldSlug, Membership, Organization, User, VerifiedDomain
from app.models.base import utcnow
from app.orgs.services import owner_emails

log = logging.getLogger(__name__)

#: How long an organization waits, read-only, between an owner's request and its deletion.
GRACE = timedelta(days=7)
#: How long a deleted organization's address stays unavailable to new organizations.
SLUG_HELD_FOR = timedelta(days=90)
#: Rows deleted per statement (and per transaction).
BATCH = 1000


class DeletionRefused(Exception):
    """Why the request (or its cancelling) was refused, for the form; ``field`` names its input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def request_deletion(org: Organization, user: User, password: str, typed_name: str, code: str = "") -> None:
    """Schedule ``org``'s deletion ``GRACE`` from now, after the owner's password (and second
    factor, if they have one); the caller commits (mail and audit go with it)."""
    if org.deletion_due_at is not None:
        raise DeletionRefused(f"{org.name} is already to be deleted.")
    if not verify_password(user.password_hash, password or ""):
        raise DeletionRefused("That is not your password.", "password")
    if two_factor.is_enabled(user.id) and not two_factor.check_second_factor(user, code or ""):
        raise DeletionRefused("Enter a current code from your authenticator app, or a recovery code.", "code")
    if (typed_name or "").strip() != org.name:
        raise DeletionRefused(f"Type the organization's name exactly: {org.name}", "name")
    now = utcnow()
    org.deletion_requested_at, org.deletion_due_at = now, now + GRACE
    audit.record("organization.deletion_requested", target=org, due=org.deletion_due_at.isoformat())
    _mail_owners(org, "organization_deletion_requested", requested_by=user.name)


def cancel_deletion(org: Organization, user: User) -> None:
    """Cancel ``org``'s pending deletion; the caller commits. Refused once its time has come."""
    if org.deletion_due_at is None:
        raise DeletionRefused(f"{org.name} is not to be deleted.")
    if org.deletion_due_at <= utcnow():
        raise DeletionRefused(f"The deletion of {org.name} has started: it can no longer be cancelled.")
    org.deletion_requested_at = org.deletion_due_at = None
    audit.record("organization.deletion_cancelled", target=org)
    _mail_owners(org, "organization_deletion_cancelled", cancelled_by=user.name)


def _mail_owners(org: Organization, template: str, **context) -> None:
    due = org.deletion_due_at
    for email in owner_emails():
        send_email(
            email,
            template,
            org_name=org.name,
            due=format_datetime(due) if due else None,
            settings_url=public_url("org.settings", org_slug=org.slug),
            **context,
        )


# --- the deletion itself ---------------------------------------------------------------------


@job(LOW, timeout=3600, period=Period("delete-due-organizations", every_seconds=3600))
def delete_due_organizations() -> int:
    """Delete every organization whose grace period is over; how many."""
    with unscoped("housekeeping: organizations whose deletion is due"):
        due_now = Organization.deletion_due_at <= utcnow()
        due = db.session.scalars(select(Organization.id).where(due_now)).all()
        db.session.rollback()
    return sum(delete_organization(org_id) for org_id in due)


def delete_organization(org_id: uuid.UUID) -> bool:
    """Delete the organization ``org_id`` if its deletion is due (False if it is not, or gone)."""
    with unscoped("deleting an organization whose deletion is due"):
        org = db.session.get(Organization, org_id)
        if org is None or org.deletion_due_at is None or org.deletion_due_at > utcnow():
            db.session.rollback()
            return False
        name, slug = org.name, org.slug
    with tenant_context(org_id):
        owners = owner_emails()
        members = db.session.scalars(select(Membership.user_id).where(Membership.tenant_id == org_id)).all()
        deleted = _delete_rows(org_id)
    shutil.rmtree(file_store().path(f"t/{org_id}"), ignore_errors=True)
    with unscoped("deleting an organization whose deletion is due"):
        # Its proven email domains are free again (the claim names the organization, not a tenant).
        db.session.execute(delete(VerifiedDomain).where(VerifiedDomain.org_id == org_id))
        db.session.execute(delete(Organization).where(Organization.id == org_id))
        held = db.session.get(HeldSlug, slug) or HeldSlug(slug=slug)
        held.held_until = utcnow() + SLUG_HELD_FOR
        db.session.add(held)
        for email in owners:  # mailed as the system: the organization's outbox is gone
            send_email(email, "organization_deleted", org_name=name)
        db.session.commit()
    # Rows deleted by table do not pass through the models: the members' cached accounts (their
    # organization switcher) are expired here.
    bump_versions({cache.user_topic_key(user_id, "account") for user_id in members})
    log.info("organization deleted", extra={"org_id": str(org_id), "slug": slug, "rows": deleted})
    return True


def _delete_rows(org_id: uuid.UUID) -> int:
    """Delete the current tenant's rows of every table, those that refer to others first."""
    total = 0
    for table in reversed(db.metadata.sorted_tables):
        if "tenant_id" not in table.c or table.name == Organization.__tablename__:
            continue
        key = tuple_(*table.primary_key.columns)
        batch = select(*table.primary_key.columns).where(table.c.tenant_id == org_id).limit(BATCH)
        while True:
            result = db.session.execute(delete(table).where(table.c.tenant_id == org_id, key.in_(batch)))
            db.session.commit()
            total += result.rowcount
            if result.rowcount < BATCH:
                break
    return total
