"""The operators' view of the organizations: each with its usage, the people, and suspension.

Operators read across organizations on purpose: the statements run inside ``unscoped`` with the
reasons below, and only on the operator pages (``operator_required``). Counts are read for the
page of organizations shown, in one grouped statement per kind of row; the storage is the size of
the organization's files (uploads, exports, backups) under its prefix of the file store.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from app.core import audit
from app.core.mail import send_email
from app.core.storage import tenant_bytes
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Issue, Membership, Organization, Project, User
from app.models.base import utcnow
from app.orgs.services import owner_emails
from app.plans import Plan, plan_named, quotas
from app.plans.quotas import Usage

#: Organizations per page of the console's list.
PAGE_SIZE = 50
#: People listed for one search.
PEOPLE_SHOWN = 50
_USAGE = "operators: the usage of the organizations on one page of the tenant console"
_PEOPLE = "operators: the organizations of the people found on the tenant console"


class SuspensionRefused(ValueError):
    """A refusal shown to the operator as it is."""


@dataclass(frozen=True)
class OrganizationUsage:
    id: uuid.UUID
    slug: str
    name: str
    created_at: datetime
    members: int
    projects: int
    issues: int
    last_activity: datetime | None
    storage_bytes: int
    suspended_at: datetime | None
    suspended_reason: str | None
    deletion_due_at: datetime | None
    #: The plan's name for people ("Free").
    plan_label: str


def _contains(column, text: str):
    """``column`` (lower-cased) contains ``text`` (its own % and _ taken literally)."""
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")


def organizations(query: str = "", page: int = 1) -> tuple[list[OrganizationUsage], int]:
    """A page of the organizations (by name, those whose name or address contains ``query``)
    with their usage, and how many match in all."""
    found = select(Organization)
    if query.strip():
        found = found.where(or_(_contains(Organization.name, query), _contains(Organization.slug, query)))
    total = db.session.scalar(select(func.count()).select_from(found.subquery()))
    page = max(1, page)
    orgs = db.session.scalars(
        found.order_by(func.lower(Organization.name), Organization.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    ids = [org.id for org in orgs]
    with unscoped(_USAGE):
        members = _counts(Membership, ids)
        projects = _counts(Project, ids)
        issues = {
            tenant: (count, latest)
            for tenant, count, latest in db.session.execute(
                select(Issue.tenant_id, func.count(), func.max(Issue.updated_at))
                .where(Issue.tenant_id.in_(ids))
                .group_by(Issue.tenant_id)
            )
        }
    return [
        OrganizationUsage(
            org.id,
            org.slug,
            org.name,
            org.created_at,
            members.get(org.id, 0),
            projects.get(org.id, 0),
            issues.get(org.id, (0, None))[0],
            issues.get(org.id, (0, None))[1],
            storage_bytes(org.id),
            org.suspended_at,
            org.suspended_reason,
            org.deletion_due_at,
            plan_named(org.plan).label,
        )
        for org in orgs
    ], total


def _counts(model, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = db.session.execute(
        select(model.tenant_id, func.count()).where(model.tenant_id.in_(ids)).group_by(model.tenant_id)
    )
    return dict(rows.all())


def storage_bytes(org_id: uuid.UUID) -> int:
    """The size of the organization's files, in bytes."""
    return tenant_bytes(org_id)


@dataclass(frozen=True)
class PersonFound:
    id: uuid.UUID
    name: str
    email: str
    created_at: datetime
    last_login_at: datetime | None
    #: (organization name, slug, role) for each organization they belong to.
    organizations: list[tuple[str, str, str]]


def find_people(query: str) -> list[PersonFound]:
    """People whose email or name contains ``query`` (at least 3 characters), with their organizations."""
    if len(query.strip()) < 3:
        return []
    people = db.session.scalars(
        select(User)
        .where(or_(_contains(User.email, query), _contains(User.name, query)))
        .where(User.deleted_at.is_(None))
        .order_by(User.email)
        .limit(PEOPLE_SHOWN)
    ).all()
    belongs: dict[uuid.UUID, list[tuple[str, str, str]]] = {person.id: [] for person in people}
    with unscoped(_PEOPLE):
        rows = db.session.execute(
            select(Membership.user_id, Organization.name, Organization.slug, Membership.role)
            .join(Organization, Organization.id == Membership.tenant_id)
            .where(Membership.user_id.in_(list(belongs)))
            .order_by(Organization.name)
        )
        for user_id, name, slug, role in rows:
            belongs[user_id].append((name, slug, role))
    return [PersonFound(p.id, p.name, p.email, p.created_at, p.last_login_at, belongs[p.id]) for p in people]


def change_plan(org: Organization, operator: User, plan: Plan) -> list[Usage]:
    """Put the organization on ``plan``, audited; what it already uses past the plan's limits
    (nothing is removed: creating more of those is refused until it fits). The caller commits."""
    before, org.plan = org.plan, plan.name
    with tenant_context(org.id):
        audit.record(
            "organization.plan_changed", target=org, actor=operator, plan_from=before, plan_to=plan.name
        )
    return quotas.over_limits(org, plan)


def suspend(org: Organization, operator: User, reason: str) -> None:
    """Close the organization's pages to its members; the owners are mailed the reason. The caller commits."""
    reason = (reason or "").strip()
    if not reason:
        raise SuspensionRefused("Say why: the owners are told.")
    if org.suspended_at is not None:
        raise SuspensionRefused(f"{org.name} is already suspended.")
    org.suspended_at, org.suspended_reason = utcnow(), reason[:500]
    with tenant_context(org.id):
        audit.record("organization.suspended", target=org, actor=operator, reason=org.suspended_reason)
        for email in owner_emails():
            send_email(email, "organization_suspended", org_name=org.name, reason=org.suspended_reason)


def unsuspend(org: Organization, operator: User) -> None:
    """Open the organization's pages again; the owners are mailed. The caller commits."""
    if org.suspended_at is None:
        raise SuspensionRefused(f"{org.name} is not suspended.")
    org.suspended_at = org.suspended_reason = None
    with tenant_context(org.id):
        audit.record("organization.unsuspended", target=org, actor=operator)
        for email in owner_emails():
            send_email(email, "organization_unsuspended", org_name=org.name)
