"""What an organization's plan allows, what it uses, and the check every creation goes through.

``check(organization, "projects")`` is called by the services that create things (projects,
issues, members and invitations, uploaded files), whatever asked for them: a form, an import,
an invitation accepted, a sign-in through the organization's provider, a restore, the JSON API.
It raises ``QuotaExceeded`` with the message people see; the caller has written nothing yet, so
the request's rollback leaves nothing half made.

What counts:
- members: memberships and pending invitations (an invitation holds a seat until it is
  accepted, revoked or expires), so an invitation sent is one that can be accepted;
- projects: active projects (an archived project is read-only and frees its slot; making it
  active again takes one);
- issues: every issue, in archived projects too;
- storage: the organization's files (CSV uploads waiting to be imported, exports).

The count is made under a lock of the organization's row (``SELECT … FOR UPDATE`` on
PostgreSQL; on SQLite a writing transaction holds the database's write lock from its start), so
two people creating at once cannot both take the last slot. An unlimited limit is neither
locked nor counted (one read of the plan).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from app.core.storage import tenant_bytes
from app.core.tenancy import require_tenant, tenant_context
from app.extensions import db
from app.models import Invitation, Issue, Membership, Organization, Project
from app.models.base import utcnow
from app.plans.catalog import LIMITS, LIMITS_BY_NAME, Limit, Plan, amount, plan_named


class QuotaExceeded(ValueError):
    """Creating this would take the organization past its plan; the message says so to people."""

    def __init__(self, plan: Plan, limit: Limit, allowed: int, used: int):
        self.plan, self.limit, self.allowed, self.used = plan, limit, allowed, used
        super().__init__(
            f"Your plan ({plan.label}) includes {amount(limit, allowed)}."
            f" Ask an owner to change the plan{', ' + limit.remedy if limit.remedy else ''}."
        )


def plan_of(organization: Organization) -> Plan:
    return plan_named(organization.plan)


def api_requests_per_minute(organization: Organization) -> int | None:
    """The requests a minute each of the organization's API keys may make (None: no limit)."""
    return plan_of(organization).api_requests_per_minute


def _pending_invitations():
    now = utcnow()
    return (
        select(func.count())
        .select_from(Invitation)
        .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > now)
    )


def used(name: str, tenant_id: uuid.UUID) -> int:
    """How much of ``name`` the organization uses now (see the module's docstring for what counts)."""
    if name == "storage":
        return tenant_bytes(tenant_id)
    with tenant_context(tenant_id):
        if name == "members":
            members = db.session.scalar(select(func.count()).select_from(Membership))
            return members + db.session.scalar(_pending_invitations())
        if name == "projects":
            return db.session.scalar(
                select(func.count()).select_from(Project).where(Project.archived_at.is_(None))
            )
        if name == "issues":
            return db.session.scalar(select(func.count()).select_from(Issue))
    raise KeyError(name)


def check(organization: Organization | None, name: str, adding: int = 1) -> None:
    """Refuse (``QuotaExceeded``) when ``adding`` more of ``name`` would pass the plan's limit.

    ``organization`` is the current tenant's when None. ``adding=0`` checks that the
    organization is within its limit (accepting an invitation, whose seat is already counted).
    """
    limit = LIMITS_BY_NAME[name]
    tenant_id = organization.id if organization is not None else require_tenant()
    plan_of_row = select(Organization.plan).where(Organization.id == tenant_id)
    if plan_named(db.session.scalar(plan_of_row)).limit(name) is None:
        return
    # Read again under the row's lock: another creator, or an operator's change, waits for us.
    plan = plan_named(db.session.scalar(plan_of_row.with_for_update()))
    allowed = plan.limit(name)
    if allowed is None:
        return
    in_use = used(name, tenant_id)
    if in_use + adding > allowed:
        raise QuotaExceeded(plan, limit, allowed, in_use)


@dataclass(frozen=True)
class Usage:
    limit: Limit
    used: int
    allowed: int | None

    @property
    def percent(self) -> int:
        """How full, 0 to 100 (0 for an unlimited limit)."""
        if not self.allowed:
            return 0 if self.allowed is None else 100
        return min(100, round(100 * self.used / self.allowed))

    @property
    def over(self) -> bool:
        return self.allowed is not None and self.used > self.allowed

    @property
    def full(self) -> bool:
        return self.allowed is not None and self.used >= self.allowed


def usage(organization: Organization) -> list[Usage]:
    """Each limit of the organization's plan with what it uses, in the order of ``LIMITS``."""
    plan = plan_of(organization)
    return [Usage(limit, used(limit.name, organization.id), plan.limit(limit.name)) for limit in LIMITS]


def over_limits(organization: Organization, plan: Plan) -> list[Usage]:
    """The limits of ``plan`` that the organization already uses more of (a downgrade's warning)."""
    found = [Usage(limit, used(limit.name, organization.id), plan.limit(limit.name)) for limit in LIMITS]
    return [item for item in found if item.over]
