"""Organizations, members and invitations: the rules, in one place."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from dataclasses import replace
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from app.apikeys import services as api_keys
from app.core import audit, edits
from app.core.permissions import ADMIN, OWNER, ROLE_LABELS, ROLES, roles_grantable_by
from app.core.security import InvalidToken, make_token, read_token
from app.core.tenancy import require_tenant, tenant_context
from app.extensions import db
from app.models import HeldSlug, Invitation, Membership, Organization, User
from app.models.base import utcnow
from app.models.orgs import SLUG_PATTERN
from app.plans import quotas

#: Words that cannot be organization slugs: they are (or may become) top-level URLs.
RESERVED_SLUGS = frozenset(
    [
        "about",
        "account",
        "accounts",
        "admin",
        "api",
        "app",
        "assets",
        "auth",
        "billing",
        "blog",
        "dev",
        "docs",
        "help",
        "healthz",
        "invitations",
        "invite",
        "jobs",
        "login",
        "logout",
        "metrics",
        "new",
        "operator",
        "orgs",
        "organizations",
        "password",
        "pricing",
        "readyz",
        "reset",
        "settings",
        "signup",
        "sso",
        "static",
        "status",
        "support",
        "verify",
        "www",
    ]
)


class OrgError(ValueError):
    """A request the rules refuse; the message is shown to the user."""


def slugify(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return text[:40].strip("-")


def slug_problem(slug: str, top_level_paths: set[str] = frozenset()) -> str | None:
    """Why a slug cannot be used, or None."""
    if not SLUG_PATTERN.match(slug):
        return "Use 3 to 40 lowercase letters, digits or hyphens, starting and ending with a letter or digit."
    if slug in RESERVED_SLUGS or slug in top_level_paths:
        return "That address is reserved. Choose another."
    if db.session.scalar(select(func.count()).select_from(Organization).where(Organization.slug == slug)):
        return "That address is taken. Choose another."
    if slug_is_held(slug):
        return "That address belonged to a deleted organization and is not available yet. Choose another."
    return None


def slug_is_held(slug: str) -> bool:
    """Whether ``slug`` was a deleted organization's address not yet free again (``app/orgs/deletion.py``)."""
    held = select(HeldSlug.slug).where(HeldSlug.slug == slug, HeldSlug.held_until > utcnow())
    return db.session.scalar(held) is not None


def owner_emails() -> list[str]:
    """The current organization's owners' addresses (named explicitly: a caller may be unscoped)."""
    statement = select(User.email).join(Membership, Membership.user_id == User.id)
    owners = statement.where(Membership.tenant_id == require_tenant(), Membership.role == OWNER)
    return sorted(db.session.scalars(owners).all())


def available_slug(name: str, top_level_paths: set[str] = frozenset()) -> str:
    base = slugify(name) or "team"
    if len(base) < 3:
        base = f"{base}-team"
    candidate = base
    while slug_problem(candidate, top_level_paths):
        candidate = f"{base[:33]}-{secrets.token_hex(3)}"
    return candidate


def create_organization(owner: User, name: str, slug: str | None = None) -> Organization:
    """A new organization with ``owner`` as its first owner (the caller commits)."""
    org = Organization(name=name.strip(), slug=slug or available_slug(name))
    db.session.add(org)
    db.session.flush()
    with tenant_context(org.id):
        db.session.add(Membership(user_id=owner.id, role=OWNER))
        audit.record("organization.created", target=org, actor=owner, name=org.name, slug=org.slug)
        db.session.flush()
    return org


def membership_for(org: Organization, user_id: uuid.UUID) -> Membership | None:
    """The user's membership of ``org``, looked up inside that tenant."""
    with tenant_context(org.id):
        membership = db.session.scalar(select(Membership).where(Membership.user_id == user_id))
        if membership is not None:
            membership.role  # noqa: B018 (load while the tenant is set)
    return membership


# --- members -------------------------------------------------------------------------------


def owner_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Membership).where(Membership.role == OWNER))


def lock_members(actor: Membership, target: Membership) -> tuple[Membership, Membership]:
    """Take the organization's member lock and reload both memberships under it.

    Every change that can take away an owner (a role change, a removal, leaving) runs its
    checks after this, so two of them at the same moment are decided one after the other
    and the last-owner rule holds: the organization's row is locked (``SELECT … FOR
    UPDATE`` on PostgreSQL; on SQLite a writer's transaction already holds the database's
    write lock from ``BEGIN IMMEDIATE``), then the rows read before the lock are read again.
    Raises OrgError when either person is no longer a member.
    """
    db.session.execute(
        select(Organization.id).where(Organization.id == target.tenant_id).with_for_update()
    ).one()
    reloaded = {
        m.id: m
        for m in db.session.scalars(
            select(Membership)
            .where(Membership.id.in_({actor.id, target.id}))
            .execution_options(populate_existing=True)
        )
    }
    if actor.id not in reloaded:
        raise OrgError("You are no longer a member of this organization.")
    if target.id not in reloaded:
        raise OrgError(f"{target.user.name} is no longer a member of this organization.")
    return reloaded[actor.id], reloaded[target.id]


def change_role(actor: Membership, target: Membership, new_role: str) -> None:
    if new_role not in ROLES:
        raise OrgError("Choose one of the listed roles.")
    actor, target = lock_members(actor, target)
    if new_role == target.role:
        return
    if OWNER in (new_role, target.role) and actor.role != OWNER:
        raise OrgError("Only an owner can make or unmake owners.")
    if new_role not in roles_grantable_by(actor.role):
        raise OrgError("You cannot give that role.")
    if target.role == OWNER and owner_count() <= 1:
        raise OrgError("An organization needs at least one owner. Make someone else an owner first.")
    old_role, target.role = target.role, new_role
    audit.record(
        "member.role_changed", target=target, user_id=str(target.user_id), old=old_role, new=new_role
    )


def remove_member(actor: Membership, target: Membership) -> None:
    """Remove someone (or leave, when actor is target)."""
    leaving = actor.id == target.id
    actor, target = lock_members(actor, target)
    if not leaving:
        if target.role == OWNER and actor.role != OWNER:
            raise OrgError("Only an owner can remove an owner.")
        if actor.role not in (OWNER, ADMIN):
            raise OrgError("You cannot remove members.")
    if target.role == OWNER and owner_count() <= 1:
        raise OrgError(
            "You are the last owner. Make someone else an owner before leaving."
            if leaving
            else "An organization needs at least one owner."
        )
    audit.record(
        "member.left" if leaving else "member.removed",
        target=target,
        user_id=str(target.user_id),
        role=target.role,
    )
    api_keys.revoke_keys_made_by(target.user_id)  # a key acts as its maker: not once they are gone
    db.session.delete(target)


def restore_member(actor: Membership, user_id: str, role: str) -> Membership:
    """Undo a removal: ``user_id`` is a member again with ``role``, if the actor may grant it."""
    if actor.role not in (OWNER, ADMIN) or role not in roles_grantable_by(actor.role):
        raise OrgError("You cannot give that role back.")
    user = db.session.get(User, uuid.UUID(user_id))
    if user is None:
        raise OrgError("That account no longer exists.")
    if db.session.scalar(select(Membership).where(Membership.user_id == user.id)) is not None:
        raise OrgError(f"{user.name} is already a member.")
    _take_seat()
    membership = Membership(user_id=user.id, role=role)
    db.session.add(membership)
    db.session.flush()
    audit.record("member.restored", target=membership, user_id=str(user.id), role=role)
    return membership


def _take_seat(org: Organization | None = None, adding: int = 1) -> None:
    """OrgError, saying so, when the plan has no seat left (``app.plans.quotas``, "members")."""
    try:
        quotas.check(org, "members", adding=adding)
    except quotas.QuotaExceeded as exc:
        raise OrgError(str(exc)) from exc


# --- invitations -----------------------------------------------------------------------------

INVITATION_TOKEN = "invitation"


def invitation_token(invitation: Invitation) -> str:
    return make_token(
        INVITATION_TOKEN, {"t": str(invitation.tenant_id), "i": str(invitation.id), "n": invitation.nonce}
    )


def invite(actor: Membership, email: str, role: str) -> Invitation:
    email = email.strip().lower()
    if role not in roles_grantable_by(actor.role):
        raise OrgError("You cannot invite someone with that role.")
    existing_member = db.session.scalar(
        select(Membership).join(User, User.id == Membership.user_id).where(User.email == email)
    )
    if existing_member is not None:
        raise OrgError(f"{email} is already a member.")
    pending = db.session.scalars(
        select(Invitation).where(
            Invitation.email == email, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None)
        )
    ).all()
    for old in pending:
        if old.usable:
            raise OrgError(f"{email} already has a pending invitation. Resend it instead.")
    _take_seat()  # members and pending invitations: a seat each
    invitation = Invitation(
        email=email,
        role=role,
        invited_by_id=actor.user_id,
        expires_at=utcnow() + timedelta(days=current_app.config["INVITATION_DAYS"]),
    )
    db.session.add(invitation)
    db.session.flush()
    audit.record("invitation.created", target=invitation, email=email, role=role)
    return invitation


def resend(invitation: Invitation) -> None:
    if invitation.accepted_at or invitation.revoked_at:
        raise OrgError("Only pending or expired invitations can be resent.")
    if not invitation.usable:  # an expired invitation takes a seat again
        _take_seat()
    invitation.nonce = secrets.token_hex(16)  # older links stop working
    invitation.sent_at = utcnow()
    invitation.expires_at = utcnow() + timedelta(days=current_app.config["INVITATION_DAYS"])
    audit.record("invitation.resent", target=invitation, email=invitation.email)


def revoke(invitation: Invitation) -> None:
    if invitation.accepted_at:
        raise OrgError("This invitation was already accepted.")
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        audit.record("invitation.revoked", target=invitation, email=invitation.email)


def invitation_from_token(token: str) -> tuple[Organization, Invitation]:
    """The organization and invitation a link names; raises InvalidToken when unusable.

    The token carries the tenant, so the lookup runs inside that tenant's scope.
    """
    max_age = current_app.config["INVITATION_DAYS"] * 24 * 3600 + 3600
    payload = read_token(INVITATION_TOKEN, token, max_age)
    try:
        tenant_id, invitation_id = uuid.UUID(payload["t"]), uuid.UUID(payload["i"])
    except (KeyError, ValueError) as exc:
        raise InvalidToken() from exc
    org = db.session.get(Organization, tenant_id)
    if org is None:
        raise InvalidToken()
    with tenant_context(org.id):
        invitation = Invitation.get_scoped(db.session, invitation_id)
        if invitation is None or invitation.nonce != payload.get("n"):
            raise InvalidToken()
        if not invitation.usable:
            raise InvalidToken(expired=invitation.status == "expired")
    return org, invitation


def accept(org: Organization, invitation: Invitation, user: User) -> Membership:
    """Join the organization through the invitation (works once)."""
    with tenant_context(org.id):
        if not invitation.usable:
            raise OrgError("This invitation can no longer be used.")
        existing = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
        if existing is None:
            _take_seat(org, adding=0)  # its seat is counted while it is pending
        invitation.accepted_at = utcnow()
        invitation.accepted_by_id = user.id
        if existing is not None:
            membership = existing
        else:
            membership = Membership(user_id=user.id, role=invitation.role)
            db.session.add(membership)
        db.session.flush()
        audit.record(
            "invitation.accepted", target=invitation, actor=user, email=invitation.email, role=invitation.role
        )
        db.session.flush()
    return membership


# --- settings ----------------------------------------------------------------------------------

#: The fields of the settings form, with their names for people.
SETTINGS_FIELDS = {"name": "Organization name", "audit_retention_days": "Audit log retention"}


def settings_values(org: Organization) -> dict:
    return {"name": org.name, "audit_retention_days": org.audit_retention_days}


def update_settings(org: Organization, loaded: dict, submitted: dict) -> list[str]:
    """Apply the settings the person changed since ``loaded`` (EditConflict if another change
    collides); audited when something was written."""
    org = edits.locked(org)
    old = org.name
    to_write = edits.merge(settings_values(org), loaded, submitted, SETTINGS_FIELDS)
    if "name" in to_write:
        org.name = to_write["name"]
        audit.record("organization.renamed", target=org, old=old, new=org.name)
    if "audit_retention_days" in to_write:
        old_days, org.audit_retention_days = org.audit_retention_days, to_write["audit_retention_days"]
        audit.record("audit.retention_changed", target=org, old=old_days, new=org.audit_retention_days)
    return sorted(to_write)


def role_edit(target: Membership, loaded: dict, role: str) -> tuple[Membership, dict]:
    """``target`` read again under a row lock, and the role to write (``{}``: nothing changed).

    Raises EditConflict when someone else changed the role since the page showed ``loaded``.
    """
    target = edits.locked(target)
    label = f"Role of {target.user.name}"
    try:
        return target, edits.merge({"role": target.role}, loaded, {"role": role}, {"role": label})
    except edits.EditConflict as conflict:
        shown = [
            replace(c, theirs=ROLE_LABELS.get(c.theirs, c.theirs), yours=ROLE_LABELS.get(c.yours, c.yours))
            for c in conflict.conflicts
        ]
        raise edits.EditConflict(shown, conflict.current) from None
