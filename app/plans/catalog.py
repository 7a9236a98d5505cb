"""The plans an organization can be on, and what each includes: declared here and nowhere else.

A limit of ``None`` is unlimited. Billing is not part of Worklane: an operator puts an
organization on a plan (``app/operators/plan_routes.py``), new organizations start on the plan
the ``DEFAULT_PLAN`` setting names.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class Limit:
    """One kind of thing a plan counts: its name, how people read it, and what to do when full."""

    name: str
    #: Its heading on the usage pages.
    title: str
    #: Singular and plural nouns: "3 projects", "1 project".
    noun: str
    nouns: str
    #: What a member can do about it, after "Ask an owner to change the plan" (may be empty).
    remedy: str


#: The limits a plan sets, in the order the usage page lists them.
LIMITS = (
    Limit("members", "Members", "member", "members", "or remove a member or revoke a pending invitation"),
    Limit("projects", "Active projects", "active project", "active projects", "or archive a project"),
    Limit("issues", "Issues", "issue", "issues", ""),
    Limit("storage", "Files", "byte of files", "of files", "or wait for old exports to expire"),
)
LIMITS_BY_NAME = {limit.name: limit for limit in LIMITS}


@dataclass(frozen=True)
class Plan:
    name: str
    label: str
    members: int | None
    projects: int | None
    issues: int | None
    #: Bytes of the organization's files (CSV uploads, exports).
    storage: int | None
    #: Requests a minute the JSON API accepts from the organization's keys.
    api_requests_per_minute: int | None

    def limit(self, name: str) -> int | None:
        return getattr(self, name)


FREE = Plan("free", "Free", members=5, projects=3, issues=1_000, storage=100 * MB, api_requests_per_minute=60)
TEAM = Plan(
    "team", "Team", members=50, projects=50, issues=50_000, storage=10 * GB, api_requests_per_minute=600
)
BUSINESS = Plan(
    "business",
    "Business",
    members=None,
    projects=None,
    issues=None,
    storage=None,
    api_requests_per_minute=3_000,
)

#: Every plan, cheapest first (the order operators are offered them).
PLANS = {plan.name: plan for plan in (FREE, TEAM, BUSINESS)}
PLAN_NAMES = tuple(PLANS)


def plan_named(name: str | None) -> Plan:
    """The plan of this name; an unknown name (a plan since withdrawn) is read as Free."""
    return PLANS.get(name or "", FREE)


def amount(limit: Limit, value: int | None) -> str:
    """A limit's value for people: "3 active projects", "100 MB of files", "unlimited"."""
    if value is None:
        return f"unlimited {limit.nouns}"
    if limit.name == "storage":
        return f"{size(value)} of files"
    return f"{value:,} {limit.noun if value == 1 else limit.nouns}"


def size(value: int) -> str:
    """Bytes as people read them: "100 MB", "10 GB", "1.5 MB"."""
    for unit, scale in (("GB", GB), ("MB", MB)):
        if value >= scale:
            number = value / scale
            return f"{number:,.0f} {unit}" if number == int(number) else f"{number:,.1f} {unit}"
    return f"{value / 1024:,.1f} KB"
