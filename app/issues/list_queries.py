"""What the issue lists read: a page of issues with filters, sorting and keyset pagination, in a
fixed number of queries whatever the page's size."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import and_, exists, func, literal, or_, select

from app.extensions import db
from app.issues.queries import people_and_labels_apart, with_people_and_labels
from app.models import Issue, IssueAssignee, IssueLabel
from app.models.work import PRIORITY_LABELS, STATES

PAGE_SIZE = 50
SORTS = {
    "updated": "Recently updated",
    "created": "Newest",
    "priority": "Priority",
    "due": "Due date",
    "number": "Number",
}
FAR_FUTURE = date(9999, 12, 31)


@dataclass
class IssueFilters:
    states: list[str] = field(default_factory=list)
    priorities: list[int] = field(default_factory=list)
    assignee: str = ""  # a user id, "me", "none" or ""
    label: str = ""  # a label id or ""
    text: str = ""
    sort: str = "updated"
    include_closed: bool = True

    @classmethod
    def from_args(cls, args) -> IssueFilters:
        states = [s for s in args.getlist("state") if s in STATES]
        priorities = []
        for value in args.getlist("priority"):
            if value.isdigit() and int(value) in PRIORITY_LABELS:
                priorities.append(int(value))
        sort = args.get("sort", "updated")
        return cls(
            states=states,
            priorities=priorities,
            assignee=args.get("assignee", "")[:40],
            label=args.get("label", "")[:40],
            text=args.get("q", "").strip()[:200],
            sort=sort if sort in SORTS else "updated",
        )

    def as_dict(self) -> dict:
        return {
            "state": self.states,
            "priority": [str(p) for p in self.priorities],
            "assignee": self.assignee,
            "label": self.label,
            "q": self.text,
            "sort": self.sort,
        }

    def cache_token(self) -> str:
        return base64.urlsafe_b64encode(json.dumps(self.as_dict(), sort_keys=True).encode()).decode()[:180]


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
            else:
                decoded.append(int(value))
        decoded.append(uuid.UUID(raw[-1]))
    except (ValueError, TypeError):
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


@dataclass
class IssuePage:
    issues: list[Issue]
    next_cursor: str | None


def list_issues(
    filters: IssueFilters, *, project_id=None, user_id=None, cursor: str | None = None, limit=PAGE_SIZE
):
    """One page of issues; three queries (issues with projects, assignees, labels) whatever the size."""
    statement = select(Issue).options(*people_and_labels_apart())
    if project_id is not None:
        statement = statement.where(Issue.project_id == project_id)
    if filters.states:
        statement = statement.where(Issue.state.in_(filters.states))
    if filters.priorities:
        statement = statement.where(Issue.priority.in_(filters.priorities))
    if filters.assignee == "none":
        statement = statement.where(~exists().where(IssueAssignee.issue_id == Issue.id))
    elif filters.assignee:
        wanted = user_id if filters.assignee == "me" else _as_uuid(filters.assignee)
        statement = statement.where(
            exists().where(IssueAssignee.issue_id == Issue.id, IssueAssignee.user_id == wanted)
        )
    if filters.label:
        statement = statement.where(
            exists().where(IssueLabel.issue_id == Issue.id, IssueLabel.label_id == _as_uuid(filters.label))
        )
    if filters.text:
        pattern = f"%{_escape_like(filters.text)}%"
        statement = statement.where(
            or_(Issue.title.ilike(pattern, escape="\\"), Issue.description.ilike(pattern, escape="\\"))
        )
    columns = [*_sort_columns(filters.sort), (Issue.id, True)]
    if cursor:
        values = _decode_cursor(cursor, filters.sort)
        if values is not None:
            statement = statement.where(_after(columns, values))
    statement = statement.order_by(*(e.desc() if d else e.asc() for e, d in columns)).limit(limit + 1)
    rows = list(db.session.scalars(statement).unique())
    has_more = len(rows) > limit
    rows = with_people_and_labels(rows[:limit])
    return IssuePage(rows, encode_cursor(rows[-1], filters.sort) if has_more and rows else None)


def _as_uuid(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.UUID(int=0)  # matches nothing


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
