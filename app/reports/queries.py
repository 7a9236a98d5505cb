"""The report numbers, aggregated by the database: no query loads every issue into Python.

Every statement reads tenant models, so the ORM scopes it to the current tenant (and
PostgreSQL's row-level security applies); ``project_id`` narrows it to one project.

Definitions (also in docs/architecture.md, "Reports"):

- The window is the 12 ISO weeks (Monday to Sunday, UTC) ending with the week of ``week_start``.
- An issue is *done* when its state is Done; it was done at ``closed_at`` (the last move to
  Done). Reopened issues count again only once they are Done again.
- *Cycle time* of a done issue: from its first move to In progress (its creation when it was
  never started) to ``closed_at``; taken over the issues done within the window.
- Percentiles use the nearest-rank method: the value at rank ``ceil(p x n)`` in order.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, case, exists, extract, func, literal, select

from app.extensions import db
from app.models import Issue, IssueActivity, IssueAssignee, User, WorkflowState
from app.models.workflow import CATEGORIES, CATEGORY_LABELS, CLOSED_CATEGORIES, COMPLETED, STARTED

WEEKS = 12

#: Cycle-time buckets: (label, upper bound in days, exclusive); the last has none.
CYCLE_BUCKETS = (
    ("< 1 day", 1),
    ("1-2 days", 2),
    ("2-4 days", 4),
    ("4-7 days", 7),
    ("7-14 days", 14),
    ("14-30 days", 30),
    ("> 30 days", None),
)

OPEN_CATEGORIES = tuple(category for category in CATEGORIES if category not in CLOSED_CATEGORIES)
UNASSIGNED = "Unassigned"


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def window(week_start: date) -> list[date]:
    """The Mondays of the 12 weeks that end with the week starting ``week_start``."""
    return [week_start - timedelta(weeks=WEEKS - 1 - n) for n in range(WEEKS)]


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _in_category(*categories):
    """The issue's state is of one of ``categories`` (its project's state of that key)."""
    return exists().where(
        WorkflowState.project_id == Issue.project_id,
        WorkflowState.key == Issue.state,
        WorkflowState.category.in_(categories),
    )


def _scoped(statement, project_id):
    return statement.where(Issue.project_id == project_id) if project_id is not None else statement


def _days_between(start, end):
    """``end - start`` in days, as a float, on PostgreSQL and on SQLite."""
    if db.session.get_bind().dialect.name == "postgresql":
        return extract("epoch", end - start) / 86400.0
    return func.julianday(end) - func.julianday(start)


def weekly_counts(project_id, week_start: date) -> tuple[list[dict], list[dict]]:
    """Throughput and burn-up in one aggregate row.

    Burn-up: issues created, and issues done, before the end of each week (cumulative).
    Throughput: the issues done within each week (the difference of consecutive totals).
    """
    mondays = window(week_start)
    ends = [_at(monday + timedelta(weeks=1)) for monday in mondays]
    is_done = _in_category(COMPLETED)
    columns = [func.count(case((and_(is_done, Issue.closed_at < _at(mondays[0])), 1)))]
    for end in ends:
        columns.append(func.count(case((and_(is_done, Issue.closed_at < end), 1))))
    for end in ends:
        columns.append(func.count(case((Issue.created_at < end, 1))))
    row = db.session.execute(_scoped(select(*columns).select_from(Issue), project_id)).one()
    done_before, done_totals, created_totals = row[0], row[1 : WEEKS + 1], row[WEEKS + 1 :]
    throughput, burnup = [], []
    previous = done_before
    for monday, done_total, created_total in zip(mondays, done_totals, created_totals, strict=True):
        label = _week_label(monday)
        throughput.append({"week": label, "start": monday.isoformat(), "done": done_total - previous})
        burnup.append(
            {"week": label, "start": monday.isoformat(), "created": created_total, "done": done_total}
        )
        previous = done_total
    return throughput, burnup


def _percentile(durations, count: int, share: float) -> float | None:
    if count == 0:
        return None
    rank = max(1, math.ceil(share * count))
    value = db.session.scalar(select(durations.c.days).order_by(durations.c.days).limit(1).offset(rank - 1))
    return round(float(value), 1)


def cycle_times(project_id, week_start: date) -> dict:
    """Histogram of cycle times (days) of the issues done within the window, with median and p85."""
    mondays = window(week_start)
    # Per done issue, its first start: an index range read of that issue's history
    # (ix_issue_activities_issue), so the cost follows the issues done in the window.
    started = (
        select(func.min(IssueActivity.created_at))
        .where(
            IssueActivity.issue_id == Issue.id,
            IssueActivity.field == "state",
            # History names the state it moved to: a name of one of the project's started states.
            IssueActivity.new_value.in_(
                select(WorkflowState.name).where(
                    WorkflowState.project_id == Issue.project_id, WorkflowState.category == STARTED
                )
            ),
        )
        .correlate(Issue)
        .scalar_subquery()
    )
    start = func.coalesce(started, Issue.created_at)
    durations = _scoped(
        select(_days_between(start, Issue.closed_at).label("days"))
        .select_from(Issue)
        .where(
            _in_category(COMPLETED),
            Issue.closed_at >= _at(mondays[0]),
            Issue.closed_at < _at(mondays[-1] + timedelta(weeks=1)),
        ),
        project_id,
    ).subquery()
    bucket = case(
        *[(durations.c.days < bound, index) for index, (_, bound) in enumerate(CYCLE_BUCKETS) if bound],
        else_=literal(len(CYCLE_BUCKETS) - 1),
    )
    counts = dict(db.session.execute(select(bucket, func.count()).group_by(bucket)).all())
    total = sum(counts.values())
    return {
        "buckets": [
            {"label": label, "count": int(counts.get(index, 0))}
            for index, (label, _) in enumerate(CYCLE_BUCKETS)
        ],
        "count": total,
        "median_days": _percentile(durations, total, 0.5),
        "p85_days": _percentile(durations, total, 0.85),
    }


def open_by_state(project_id) -> list[dict]:
    """Open issues per state of the project, in board order; of the organization (whose projects
    each have their own states), per open category."""
    if project_id is None:
        return _open_by_category()
    counts = dict(
        db.session.execute(
            _scoped(
                select(Issue.state, func.count()).where(Issue.closed_at.is_(None)).group_by(Issue.state),
                project_id,
            )
        ).all()
    )
    states = db.session.scalars(
        select(WorkflowState).where(
            WorkflowState.project_id == project_id, WorkflowState.category.in_(OPEN_CATEGORIES)
        )
    ).all()
    states = sorted(states, key=lambda s: (CATEGORIES.index(s.category), s.position, s.key))
    return [{"state": s.key, "label": s.name, "count": int(counts.get(s.key, 0))} for s in states]


def _open_by_category() -> list[dict]:
    category = (
        select(WorkflowState.category)
        .where(WorkflowState.project_id == Issue.project_id, WorkflowState.key == Issue.state)
        .correlate(Issue)
        .scalar_subquery()
        .label("category")
    )
    counts = dict(
        db.session.execute(
            select(category, func.count())
            .select_from(Issue)
            .where(Issue.closed_at.is_(None))
            .group_by(category)
        ).all()
    )
    return [
        {"state": c, "label": CATEGORY_LABELS[c], "count": int(counts.get(c, 0))} for c in OPEN_CATEGORIES
    ]


def open_by_assignee(project_id) -> list[dict]:
    """Open issues per assignee (an issue with two assignees counts for both), and unassigned ones."""
    is_open = Issue.closed_at.is_(None)
    rows = db.session.execute(
        _scoped(
            select(User.id, User.name, func.count())
            .select_from(Issue)
            .join(IssueAssignee, IssueAssignee.issue_id == Issue.id)
            .join(User, User.id == IssueAssignee.user_id)
            .where(is_open)
            .group_by(User.id, User.name),
            project_id,
        )
    ).all()
    assigned = select(IssueAssignee.issue_id).where(IssueAssignee.issue_id == Issue.id).exists()
    unassigned = db.session.scalar(
        _scoped(select(func.count()).select_from(Issue).where(is_open, ~assigned), project_id)
    )
    people = sorted(
        ({"name": name, "user_id": str(user_id), "count": int(count)} for user_id, name, count in rows),
        key=lambda entry: (-entry["count"], entry["name"].lower()),
    )
    return [*people, {"name": UNASSIGNED, "user_id": None, "count": int(unassigned or 0)}]


def compute(
    project_id: uuid.UUID | None, week_start: date, progress: Callable[[int], None] | None = None
) -> dict:
    """Every report of the scope as plain values (the snapshot's JSON)."""
    step = progress or (lambda done: None)
    throughput, burnup = weekly_counts(project_id, week_start)
    step(1)
    cycle = cycle_times(project_id, week_start)
    step(2)
    by_state = open_by_state(project_id)
    step(3)
    by_assignee = open_by_assignee(project_id)
    step(4)
    return {
        "week_start": week_start.isoformat(),
        "throughput": throughput,
        "cycle_time": cycle,
        "burnup": burnup,
        "open_by_state": by_state,
        "open_by_assignee": by_assignee,
    }
