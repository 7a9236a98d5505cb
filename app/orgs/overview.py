"""What an organization's overview shows: each active project's issues by state, the latest
activity, the members by role and, for a new organization, what is left to set it up.

The organization's part is read in a fixed number of queries whatever the number of projects
(grouped counts, the latest history and comments by time) and memoized per tenant under the
versions of every topic it shows, so an edit shows on the next view. Times are kept as
datetimes and put in words when the page is rendered, so "3 minutes ago" does not freeze.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.core import cache
from app.core.permissions import ROLES
from app.extensions import db
from app.models import Comment, Invitation, Issue, IssueActivity, Membership, Project, User
from app.projects.workflow import State, tenant_states

#: Entries of the activity feed.
ACTIVITY_SHOWN = 15
#: Kinds of data the organization's part shows: its key holds each one's version.
OVERVIEW_TOPICS = ("issues", "projects", "members", "comments", "activity", "invitations")


@dataclass(frozen=True)
class ProjectCounts:
    """An active project with its states in board order and its number of issues in each
    (every state, 0 included)."""

    key: str
    name: str
    states: list[State]
    by_state: dict[str, int]

    @property
    def open_states(self) -> list[str]:
        return [state.key for state in self.states if not state.closed]

    @property
    def open(self) -> int:
        return sum(self.by_state[key] for key in self.open_states)


@dataclass(frozen=True)
class Event:
    """One entry of the activity feed: who did what to which issue, and when."""

    at: datetime
    actor: str | None
    #: The history entry's field ("created", "state", "title", …) or "comment".
    kind: str
    old: str | None
    new: str | None
    ref: str
    title: str


@dataclass(frozen=True)
class Setup:
    """What a new organization has done of its first steps."""

    has_project: bool
    has_people: bool
    has_import: bool
    #: The first active project, where issues are imported (None before any).
    import_into: str | None


@dataclass(frozen=True)
class Overview:
    projects: list[ProjectCounts]
    activity: list[Event]
    role_counts: dict[str, int]
    #: None once the organization has projects, issues and people.
    setup: Setup | None = None
    archived_projects: int = 0

    @property
    def member_count(self) -> int:
        return sum(self.role_counts.values())


def organization_overview() -> Overview:
    """The current organization's overview, from the cache while none of its topics moved."""
    numbers = cache.versions(*OVERVIEW_TOPICS)
    return cache.memoize_for_tenant(
        OVERVIEW_TOPICS[0], "overview", _read_overview, ".".join(map(str, numbers))
    )


def _read_overview() -> Overview:
    projects = db.session.execute(
        select(Project.id, Project.key, Project.name, Project.archived_at).order_by(Project.name, Project.key)
    ).all()
    # Read from the issues' (tenant, project, state, …) index alone, for every project at once.
    counts: dict = {}
    for project_id, state, count in db.session.execute(
        select(Issue.project_id, Issue.state, func.count()).group_by(Issue.project_id, Issue.state)
    ):
        counts.setdefault(project_id, {})[state] = count
    states: dict = {}
    for state in tenant_states():
        states.setdefault(state.project_key, []).append(state)
    active = [
        ProjectCounts(
            key,
            name,
            states.get(key, []),
            {state.key: counts.get(project_id, {}).get(state.key, 0) for state in states.get(key, [])},
        )
        for project_id, key, name, archived_at in projects
        if archived_at is None
    ]
    role_counts = _role_counts()
    setup = None
    if not projects or not counts or sum(role_counts.values()) < 2:
        setup = _setup(projects, active, role_counts)
    return Overview(
        projects=active,
        activity=latest_activity(),
        role_counts=role_counts,
        setup=setup,
        archived_projects=len(projects) - len(active),
    )


def _role_counts() -> dict[str, int]:
    found = dict(db.session.execute(select(Membership.role, func.count()).group_by(Membership.role)).all())
    return {role: found.get(role, 0) for role in ROLES}


def _setup(projects, active: list[ProjectCounts], role_counts: dict[str, int]) -> Setup | None:
    """The first steps and which are done; None when all are."""
    pending = select(func.count()).where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
    has_people = sum(role_counts.values()) > 1 or bool(db.session.scalar(pending.select_from(Invitation)))
    imported = select(Issue.id).where(Issue.import_key.is_not(None)).limit(1)
    has_import = bool(projects) and db.session.scalar(imported) is not None
    if projects and has_people and has_import:
        return None
    return Setup(bool(projects), has_people, has_import, active[0].key if active else None)


def latest_activity(limit: int = ACTIVITY_SHOWN) -> list[Event]:
    """The organization's latest history entries and comments, newest first: two queries."""
    fields = (IssueActivity.field, IssueActivity.old_value, IssueActivity.new_value)
    changes = _latest(IssueActivity, IssueActivity.actor_id, fields, limit)
    comments = _latest(Comment, Comment.author_id, (Comment.body,), limit)
    events = [
        Event(at, actor, kind, old, new, f"{key}-{number}", title)
        for at, actor, kind, old, new, key, number, title in changes
    ]
    events += [
        Event(at, actor, "comment", None, _excerpt(body), f"{key}-{number}", title)
        for at, actor, body, key, number, title in comments
    ]
    events.sort(key=lambda event: event.at, reverse=True)
    return events[:limit]


def _latest(entry, person, columns: tuple, limit: int) -> list:
    """The latest ``limit`` rows of ``entry`` (history or comments): when, whose name, ``columns``
    and the issue's project key, number and title."""
    return db.session.execute(
        select(entry.created_at, User.name, *columns, Project.key, Issue.number, Issue.title)
        .join(Issue, Issue.id == entry.issue_id)
        .join(Project, Project.id == Issue.project_id)
        .outerjoin(User, User.id == person)
        .order_by(entry.created_at.desc(), entry.id.desc())
        .limit(limit)
    ).all()


def _excerpt(text: str, length: int = 120) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"
