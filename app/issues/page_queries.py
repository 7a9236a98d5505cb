"""What an issue's page reads of its rows: the issue, the ids of its assignees, watchers and
labels, and its comments and changes, in one query built once per process (``issue_page``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    Date,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)

from app.extensions import db
from app.models import Comment, Issue, IssueActivity, IssueAssignee, IssueLabel, IssueWatcher, Project, User


def _ids_of(column, link):
    """The ids in ``column`` of the issue's ``link`` rows, joined with commas."""
    return (
        select(func.aggregate_strings(cast(column, String), ","))
        .where(link.tenant_id == Issue.tenant_id, link.issue_id == Issue.id)
        .scalar_subquery()
    )


@dataclass(frozen=True, slots=True)
class ShownIssue:
    """What the issue's page shows of the issue itself (``issue_page``)."""

    id: uuid.UUID
    created_at: datetime
    number: int
    title: str
    state: str
    priority: int
    due_date: date | None
    estimate: int | None
    project_key: str
    project_name: str
    description: str | None
    description_html: str | None
    description_html_version: int | None

    @property
    def ref(self) -> str:
        return f"{self.project_key}-{self.number}"


#: The columns of the issue page's one query after its position, time and kind: the issue's
#: (NULL on its comments and changes), then its comments' and changes' (NULL on the issue).
_ISSUE_COLUMNS = {
    "number": Integer(),
    "title": String(),
    "state": String(),
    "priority": Integer(),
    "due_date": Date(),
    "estimate": Integer(),
    "project_key": String(),
    "project_name": String(),
    "description": Text(),
    "description_html": Text(),
    "description_html_version": Integer(),
    "assignee_ids": Text(),
    "watcher_ids": Text(),
    "label_ids": Text(),
}
_TIMELINE_COLUMNS = {
    "name": String(),
    "body": Text(),
    "body_html": Text(),
    "body_html_version": Integer(),
    "field": String(),
    "old_value": Text(),
    "new_value": Text(),
}


def _page_rows(model, position: int, kind: str, columns: dict):
    """The rows of ``model`` in the page query's columns (NULL where ``model`` has none)."""
    shown = {name: cast(null(), type_) for name, type_ in {**_ISSUE_COLUMNS, **_TIMELINE_COLUMNS}.items()}
    shown.update(columns)
    return select(
        literal_column(str(position), Integer).label("position"),
        model.created_at.label("created_at"),
        literal_column(f"'{kind}'", String).label("kind"),
        *(column.label(name) for name, column in shown.items()),
    ).select_from(model)


def _timeline_rows(model, kind: str, person, columns: dict):
    """The issue's rows of ``model`` (comments or changes) in the page query's columns, with the
    name of the person ``person`` names (None once their account is gone)."""
    return (
        _page_rows(model, 1, kind, {"name": User.name, **columns})
        .outerjoin(User, User.id == person)
        .where(model.issue_id == bindparam("issue_id"))
    )


# Built once: only the issue's id is bound per execution. The tenant's criteria are added when it
# runs, as to every ORM statement (``app.core.tenancy``).
#: Everything an issue's page shows of its rows, in one query: first the issue with its project
#: and the ids of its assignees, watchers and labels, then its comments and changes oldest first
#: (a comment before a change made at the same instant), with who wrote or made each (``name``,
#: None once their account is gone).
_ISSUE_PAGE = union_all(
    _page_rows(
        Issue,
        0,
        "issue",
        {
            **{name: getattr(Issue, name) for name in list(_ISSUE_COLUMNS)[:6]},
            "project_key": Project.key,
            "project_name": Project.name,
            "description": Issue.description,
            "description_html": Issue.description_html,
            "description_html_version": Issue.description_html_version,
            "assignee_ids": _ids_of(IssueAssignee.user_id, IssueAssignee),
            "watcher_ids": _ids_of(IssueWatcher.user_id, IssueWatcher),
            "label_ids": _ids_of(IssueLabel.label_id, IssueLabel),
        },
    )
    .join(Issue.project)
    .where(Issue.id == bindparam("issue_id")),
    _timeline_rows(
        Comment,
        "comment",
        Comment.author_id,
        {
            "body": Comment.body,
            "body_html": Comment.body_html,
            "body_html_version": Comment.body_html_version,
        },
    ),
    _timeline_rows(
        IssueActivity,
        "event",
        IssueActivity.actor_id,
        {
            "field": IssueActivity.field,
            "old_value": IssueActivity.old_value,
            "new_value": IssueActivity.new_value,
        },
    ),
).order_by("position", "created_at", "kind")


def issue_page_rows(issue_id) -> list:
    """The rows of ``_ISSUE_PAGE`` for the issue ``issue_id`` in the current organization."""
    return db.session.execute(_ISSUE_PAGE, {"issue_id": issue_id}).all()


def issue_page(issue_id) -> tuple[ShownIssue, set[str], set[str], set[str], list] | None:
    """What an issue's page shows of its rows, in one query (``_ISSUE_PAGE``): the issue, the ids
    of its assignees, its watchers and its labels, and its comments and changes (rows with
    ``kind`` "comment" or "event"); None when the current organization has no such issue. (The
    page names the assignees and labels from the tenant's cached members and labels,
    ``queries.issue_page_choices``.)"""
    rows = issue_page_rows(issue_id)
    if not rows or rows[0].kind != "issue":
        return None
    first = rows[0]
    issue = ShownIssue(issue_id, first.created_at, *first[3 : 3 + len(ShownIssue.__slots__) - 2])
    ids = (_id_set(first.assignee_ids), _id_set(first.watcher_ids), _id_set(first.label_ids))
    return (issue, *ids, rows[1:])


def _id_set(joined: str | None) -> set[str]:
    """Ids joined with commas, as dashed UUIDs (SQLite spells a UUID as 32 hex digits)."""
    return {str(uuid.UUID(value)) for value in (joined or "").split(",") if value}
