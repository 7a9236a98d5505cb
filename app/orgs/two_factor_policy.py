"""The organization's "require two-factor" policy, and who it keeps out.

Owners and admins turn it on with a grace period in days; members without two-factor keep
their membership, and once the grace period has passed every page of the organization sends
them to set it up (``blocked``, checked on the way into each page: ``app/orgs/context.py``).
A grace period of 0 starts at once: at their next page or sign-in. The person turning it on
must have two-factor themselves.
"""

from __future__ import annotations

from datetime import datetime

from app.auth import two_factor
from app.auth.identity import Account, MembershipSummary
from app.core import audit
from app.models import Organization, User
from app.models.base import utcnow

MAX_GRACE_DAYS = 365


class PolicyError(ValueError):
    """A refusal shown on the form as it is."""


def blocked(account: Account, access: MembershipSummary, now: datetime | None = None) -> bool:
    """Whether the organization refuses this person for want of two-factor."""
    deadline = access.two_factor_deadline
    return deadline is not None and not account.two_factor and (now or utcnow()) >= deadline


def policy_values(org: Organization) -> dict:
    return {"required": org.two_factor_required_at is not None, "grace_days": org.two_factor_grace_days}


def set_policy(org: Organization, user: User, required: bool, grace_days: int) -> bool:
    """Require two-factor (from now, with ``grace_days``) or stop requiring it; returns whether
    anything changed (an unchanged form changes nothing and records nothing)."""
    if not required:
        grace_days = org.two_factor_grace_days
    if policy_values(org) == {"required": required, "grace_days": grace_days}:
        return False
    if required and not two_factor.is_enabled(user.id):
        raise PolicyError(
            "Turn on two-factor authentication for your own account first: "
            "you would otherwise be the first one it keeps out."
        )
    if required and org.two_factor_required_at is None:
        org.two_factor_required_at = utcnow()
    elif not required:
        org.two_factor_required_at = None
    org.two_factor_grace_days = grace_days
    audit.record(
        "two_factor.policy_changed", target=org, actor=user, required=required, grace_days=grace_days
    )
    return True
