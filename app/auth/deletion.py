"""Deleting one's account: asked with the password, it waits a grace period (cancellable), then
the person's data goes and what they wrote stays, credited to "Deleted user".

A person who is the only owner of an organization cannot ask: they make someone else an owner,
or delete the organization, first. After ``GRACE`` the hourly job ``delete_due_accounts`` first
makes the account nameless (name, address, password and second factor gone, every session ended; the name's
change expires their organizations' cached pages), then, organization by organization, deletes
what was theirs alone: memberships, assignments, watches, notifications and personal saved views
(the rows that refer to the person and go with them, ``ON DELETE CASCADE``). Issues, comments and
history they wrote keep pointing to the nameless row, shown as "Deleted user".
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import delete, func, select

from app.core.mail import public_url, send_email
from app.core.permissions import OWNER
from app.core.queue.queues import LOW, Period, job
from app.core.security import verify_password
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Membership, Organization, User
from app.models.base import utcnow
from app.models.two_factor import RecoveryCode, TwoFactor

log = logging.getLogger(__name__)

#: How long a request to delete an account waits, cancellable, before the account goes.
GRACE = timedelta(days=7)
#: The name a deleted account's content is shown under.
DELETED_NAME = "Deleted user"
#: What the password of a deleted account is set to: no password matches it.
NO_PASSWORD = "!"
#: Why the statements reading a person's memberships across organizations may do so.
_ACROSS = "a person's own memberships, to delete their account"


class AccountDeletionRefused(Exception):
    """Why the request was refused, for the form."""


def organizations_only_they_own(user_id: uuid.UUID) -> list[str]:
    """The names of the organizations (not themselves being deleted) whose only owner is the person."""
    owners = (
        select(Membership.tenant_id, func.count().label("owners"))
        .where(Membership.role == OWNER)
        .group_by(Membership.tenant_id)
        .subquery()
    )
    statement = (
        select(Organization.name)
        .join(Membership, Membership.tenant_id == Organization.id)
        .join(owners, owners.c.tenant_id == Organization.id)
        .where(
            Membership.user_id == user_id,
            Membership.role == OWNER,
            owners.c.owners == 1,
            Organization.deletion_due_at.is_(None),
        )
        .order_by(Organization.name)
    )
    with unscoped(_ACROSS):
        return list(db.session.scalars(statement))


def request_deletion(user: User, password: str) -> None:
    """Schedule the account's deletion ``GRACE`` from now and mail the person; the caller commits."""
    if user.deletion_due_at is not None:
        raise AccountDeletionRefused("Your account is already to be deleted.")
    if not verify_password(user.password_hash, password or ""):
        raise AccountDeletionRefused("That is not your password.")
    if only_theirs := organizations_only_they_own(user.id):
        raise AccountDeletionRefused(
            f"You are the only owner of {', '.join(only_theirs)}. Make someone else an owner, "
            "or delete the organization, first."
        )
    user.deletion_due_at = utcnow() + GRACE
    send_email(
        user.email, "account_deletion_requested", name=user.name, account_url=public_url("auth.account")
    )


def cancel_deletion(user: User) -> None:
    """Keep the account; the caller commits."""
    if user.deletion_due_at is None:
        raise AccountDeletionRefused("Your account is not to be deleted.")
    user.deletion_due_at = None


@job(LOW, timeout=1800, period=Period("delete-due-accounts", every_seconds=3600))
def delete_due_accounts() -> int:
    """Delete every account whose grace period is over; how many."""
    due = db.session.scalars(select(User.id).where(User.deletion_due_at <= utcnow())).all()
    db.session.rollback()
    return sum(delete_account(user_id) for user_id in due)


def delete_account(user_id: uuid.UUID) -> bool:
    """Delete the account ``user_id`` if its deletion is due and nobody depends on it as the only
    owner (False otherwise)."""
    user = db.session.get(User, user_id)
    if user is None or user.deletion_due_at is None or user.deletion_due_at > utcnow():
        db.session.rollback()
        return False
    if only_theirs := organizations_only_they_own(user_id):
        log.warning(
            "account not deleted: its person is an organization's only owner", extra={"orgs": only_theirs}
        )
        db.session.rollback()
        return False
    address = user.email
    user.name, user.email, user.pending_email = DELETED_NAME, f"deleted-{user_id.hex}@deleted.invalid", None
    user.password_hash, user.email_verified_at, user.last_login_at = NO_PASSWORD, None, None
    user.deletion_due_at, user.deleted_at = None, utcnow()
    user.end_all_sessions()
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    db.session.execute(delete(TwoFactor).where(TwoFactor.user_id == user_id))
    send_email(address, "account_deleted")
    db.session.commit()
    with unscoped(_ACROSS):
        tenants = db.session.scalars(select(Membership.tenant_id).where(Membership.user_id == user_id)).all()
    for tenant_id in tenants:
        with tenant_context(tenant_id):
            _delete_their_rows(user_id)
            db.session.commit()
    log.info("account deleted", extra={"user_id": str(user_id), "organizations": len(tenants)})
    return True


def _delete_their_rows(user_id: uuid.UUID) -> None:
    """Delete the current organization's rows that go with the person (their foreign key to the
    person cascades), through the models so the cached pages showing them expire."""
    models = {mapper.local_table.name: mapper.class_ for mapper in db.Model.registry.mappers}
    for table in reversed(db.metadata.sorted_tables):
        if "tenant_id" not in table.c or table.name not in models:
            continue
        for key in table.foreign_keys:
            if key.column.table.name == User.__tablename__ and key.ondelete == "CASCADE":
                model = models[table.name]
                db.session.execute(delete(model).where(getattr(model, key.parent.key) == user_id))
