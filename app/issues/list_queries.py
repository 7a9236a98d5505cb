"""What the issue lists read: a page of issues with filters, sorting and keyset pagination both
ways, and how many issues match, in a fixed number of queries whatever the page's size."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, exists, func, literal, or_, select

from app.core import cache
from app.extensions import db
from app.issues.list_filters import IssueFilters
from app.issues.queries import people_and_labels_apart, with_people_and_labels
from app.models import Issue, IssueAssignee, IssueLabel, Project

PAGE_SIZE = 50
FAR_FUTURE = date(9999, 12, 31)


@dataclass(frozen=True)
class ProjectChoice:
    """A project as a filter choice (plain values, so it can be cached)."""

    id: str
    key: str
    name: str


def project_choices() -> list[ProjectChoice]:
    """The organization's projects for the project filter, cached per tenant until one changes."""

    def compute():
        rows = db.session.execute(select(Project.id, Project.key, Project.name).order_by(Project.key))
        return [ProjectChoice(str(id_), key, name) for id_, key, name in rows]

    return cache.memoize_for_tenant("projects", "project-choices", compute)


def _sort_columns(sort: str):
    """(expression, descending) pairs; Issue.id always breaks ties."""
    if sort == "created":
        return [(Issue.created_at, True)]
    if sort == "priority":
        return [(Issue.priority, True), (Issue.updated_at, True)]
    if sort == "due":
        return [(func.coalesce(Issue.due_date, literal(FAR_FUTURE)), False), (Issue.updated_at, True)]
    if sort == "number":
        return [(Issue.number, False)]
    return [(Issue.updated_at, True)]


def _cursor_values(issue: Issue, sort: str) -> list:
    values = {
        "created": [issue.created_at.isoformat()],
        "priority": [issue.priority, issue.updated_at.isoformat()],
        "due": [(issue.due_date or FAR_FUTURE).isoformat(), issue.updated_at.isoformat()],
        "number": [issue.number],
    }.get(sort, [issue.updated_at.isoformat()])
    return [*values, str(issue.id)]


def encode_cursor(issue: Issue, sort: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(_cursor_values(issue, sort)).encode()).decode()


def _decode_cursor(cursor: str, sort: str):
    """The sort values and id a cursor holds, or None for one this list did not write."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        return None
    columns = _sort_columns(sort)
    if not isinstance(raw, list) or len(raw) != len(columns) + 1:
        return None
    decoded = []
    try:
        for (expression, _), value in zip(columns, raw[:-1], strict=True):
            name = getattr(expression, "key", None) or "due"
            if name in ("created_at", "updated_at"):
                decoded.append(datetime.fromisoformat(value))
            elif name == "due":
                decoded.append(date.fromisoformat(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                decoded.append(value)
            else:
                return None
        decoded.append(uuid.UUID(raw[-1]))
    except (ValueError, TypeError, AttributeError):
        return None
    return decoded


def _after(columns, values):
    """Rows strictly after ``values`` in the given order (lexicographic, mixed directions)."""
    clauses = []
    for i, ((expression, descending), value) in enumerate(zip(columns, values, strict=True)):
        equal_before = [columns[j][0] == values[j] for j in range(i)]
        step = expression < value if descending else expression > value
        clauses.append(and_(*equal_before, step))
    return or_(*clauses)


def _conditions(filters: IssueFilters, project_ids, user_id) -> list:
    """The WHERE clauses of the filters: any value of a filter matches, every filter must match."""
    found = []
    if project_ids is not None:
        found.append(Issue.project_id.in_(project_ids))
    if filters.states:
        found.append(Issue.state.in_(filters.states))
    if filters.priorities:
        found.append(Issue.priority.in_(filters.priorities))
    if filters.assignees:
        people = [user_id if a == "me" else _as_uuid(a) for a in filters.assignees if a != "none"]
        either = []
        if "none" in filters.assignees:
            either.append(~exists().where(IssueAssignee.issue_id == Issue.id))
        if people:
            either.append(
                exists().where(IssueAssignee.issue_id == Issue.id, IssueAssignee.user_id.in_(people))
            )
        found.append(or_(*either))
    if filters.labels:
        label_ids = [_as_uuid(label) for label in filters.labels]
        found.append(exists().where(IssueLabel.issue_id == Issue.id, IssueLabel.label_id.in_(label_ids)))
    if filters.text:
        pattern = f"%{_escape_like(filters.text)}%"
        found.append(
            or_(Issue.title.ilike(pattern, escape="\\"), Issue.description.ilike(pattern, escape="\\"))
        )
    return found


@dataclass
class IssuePage:
    issues: list[Issue]
    next_cursor: str | None
    previous_cursor: str | None = None
    #: The address named a page this list did not write: the first page is shown instead.
    bad_cursor: bool = False


def list_issues(
    filters: IssueFilters,
    *,
    project_ids=None,
    user_id=None,
    after: str | None = None,
    before: str | None = None,
    limit=PAGE_SIZE,
) -> IssuePage:
    """One page of issues: the first, the one ``after`` a row or the one ``before`` it (with
    cursors to the pages on either side); three queries (issues, assignees, labels)."""
    statement = select(Issue).options(*people_and_labels_apart())
    statement = statement.where(*_conditions(filters, project_ids, user_id))
    columns = [*_sort_columns(filters.sort), (Issue.id, True)]
    cursor = after or before
    values = _decode_cursor(cursor, filters.sort) if cursor else None
    backwards = bool(before and not after and values is not None)
    if values is not None:
        order = [(e, not d) for e, d in columns] if backwards else columns
        statement = statement.where(_after(order, values))
    order = [(e, not d) for e, d in columns] if backwards else columns
    statement = statement.order_by(*(e.desc() if d else e.asc() for e, d in order)).limit(limit + 1)
    rows = list(db.session.scalars(statement).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    rows = with_people_and_labels(rows)
    first = encode_cursor(rows[0], filters.sort) if rows else None
    last = encode_cursor(rows[-1], filters.sort) if rows else None
    if backwards:
        return IssuePage(rows, last, first if more else None)
    came_from_a_page = values is not None
    return IssuePage(
        rows,
        last if more else None,
        first if came_from_a_page else None,
        bad_cursor=bool(cursor and values is None),
    )


def count_issues(filters: IssueFilters, *, project_ids=None, user_id=None) -> int:
    """How many issues the filters match: one COUNT, under the tenant's scoping."""
    statement = select(func.count(Issue.id)).where(*_conditions(filters, project_ids, user_id))
    return db.session.scalar(statement)


def _as_uuid(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.UUID(int=0)  # matches nothing


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
