"""What an export holds, table by table: one place for the export's format.

Each table is a SELECT of the current tenant's rows (scoped like every ORM query) with
people named by email and issues by their reference (``WEB-42``) next to the raw ids, in
an order that depends only on the data's natural keys. Two exports of the same content,
whatever the ids, therefore hold the same rows in the same order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Select, String, cast, func, literal, select
from sqlalchemy.orm import aliased

from app.core.security import spreadsheet_safe
from app.models import (
    Comment,
    Issue,
    IssueActivity,
    IssueAssignee,
    IssueLabel,
    IssueWatcher,
    Label,
    Notification,
    Project,
    SavedView,
    User,
)

FORMAT = "worklane-export"
#: Bumped when a table or column changes meaning; the import refuses versions it does not know.
FORMAT_VERSION = 1


def _issue_ref():
    return (Project.key + literal("-") + cast(Issue.number, String)).label("issue")


def _email(alias, name: str):
    return alias.email.label(name)


def _projects() -> Select:
    creator = aliased(User)
    return (
        select(
            Project.key,
            Project.name,
            Project.description,
            Project.issue_counter,
            Project.archived_at,
            _email(creator, "created_by"),
            Project.created_at,
            Project.updated_at,
            Project.id,
        )
        .outerjoin(creator, creator.id == Project.created_by_id)
        .order_by(Project.key)
    )


def _labels() -> Select:
    return select(Label.name, Label.color, Label.created_at, Label.id).order_by(Label.name)


def _issues() -> Select:
    creator = aliased(User)
    return (
        select(
            _issue_ref(),
            Project.key.label("project"),
            Issue.number,
            Issue.title,
            Issue.description,
            Issue.state,
            Issue.priority,
            Issue.due_date,
            Issue.estimate,
            _email(creator, "created_by"),
            Issue.created_at,
            Issue.updated_at,
            Issue.closed_at,
            Issue.version,
            Issue.rank,
            Issue.id,
            Issue.project_id,
        )
        .join(Project, Project.id == Issue.project_id)
        .outerjoin(creator, creator.id == Issue.created_by_id)
        .order_by(Project.key, Issue.number)
    )


def _issue_people(model) -> Callable[[], Select]:
    def statement() -> Select:
        person = aliased(User)
        return (
            select(_issue_ref(), _email(person, "user"), model.issue_id, model.user_id)
            .join(Issue, Issue.id == model.issue_id)
            .join(Project, Project.id == Issue.project_id)
            .join(person, person.id == model.user_id)
            .order_by(Project.key, Issue.number, person.email)
        )

    return statement


def _issue_labels() -> Select:
    return (
        select(_issue_ref(), Label.name.label("label"), IssueLabel.issue_id, IssueLabel.label_id)
        .join(Issue, Issue.id == IssueLabel.issue_id)
        .join(Project, Project.id == Issue.project_id)
        .join(Label, Label.id == IssueLabel.label_id)
        .order_by(Project.key, Issue.number, Label.name)
    )


def _comments() -> Select:
    author = aliased(User)
    return (
        select(
            _issue_ref(),
            _email(author, "author"),
            Comment.body,
            Comment.created_at,
            Comment.updated_at,
            Comment.id,
            Comment.issue_id,
        )
        .join(Issue, Issue.id == Comment.issue_id)
        .join(Project, Project.id == Issue.project_id)
        .outerjoin(author, author.id == Comment.author_id)
        .order_by(Project.key, Issue.number, Comment.created_at, Comment.id)
    )


def _activities() -> Select:
    actor = aliased(User)
    return (
        select(
            _issue_ref(),
            _email(actor, "actor"),
            IssueActivity.field,
            IssueActivity.old_value,
            IssueActivity.new_value,
            IssueActivity.created_at,
            IssueActivity.id,
            IssueActivity.issue_id,
        )
        .join(Issue, Issue.id == IssueActivity.issue_id)
        .join(Project, Project.id == Issue.project_id)
        .outerjoin(actor, actor.id == IssueActivity.actor_id)
        .order_by(Project.key, Issue.number, IssueActivity.created_at, IssueActivity.id)
    )


def _saved_views() -> Select:
    owner = aliased(User)
    project = aliased(Project)
    return (
        select(
            _email(owner, "user"),
            project.key.label("project"),
            SavedView.name,
            SavedView.filters,
            SavedView.created_at,
            SavedView.id,
        )
        .join(owner, owner.id == SavedView.user_id)
        .outerjoin(project, project.id == SavedView.project_id)
        .order_by(owner.email, SavedView.name)
    )


def _notifications() -> Select:
    person, actor = aliased(User), aliased(User)
    return (
        select(
            _email(person, "user"),
            _issue_ref(),
            _email(actor, "actor"),
            Notification.kind,
            Notification.excerpt,
            Notification.created_at,
            Notification.read_at,
            Notification.emailed_at,
            Notification.id,
        )
        .join(person, person.id == Notification.user_id)
        .join(Issue, Issue.id == Notification.issue_id)
        .join(Project, Project.id == Issue.project_id)
        .outerjoin(actor, actor.id == Notification.actor_id)
        .order_by(person.email, Notification.created_at, Notification.id)
    )


@dataclass(frozen=True)
class ExportTable:
    """One table of the export: its file names' stem, its model and its statement."""

    name: str
    model: type
    statement: Callable[[], Select]

    def count(self) -> Select:
        return select(func.count()).select_from(self.model)


#: Every table, in the order the import needs them (what a row refers to comes first).
TABLES: tuple[ExportTable, ...] = (
    ExportTable("projects", Project, _projects),
    ExportTable("labels", Label, _labels),
    ExportTable("issues", Issue, _issues),
    ExportTable("issue_assignees", IssueAssignee, _issue_people(IssueAssignee)),
    ExportTable("issue_labels", IssueLabel, _issue_labels),
    ExportTable("issue_watchers", IssueWatcher, _issue_people(IssueWatcher)),
    ExportTable("comments", Comment, _comments),
    ExportTable("issue_activities", IssueActivity, _activities),
    ExportTable("saved_views", SavedView, _saved_views),
    ExportTable("notifications", Notification, _notifications),
)


def plain(value):
    """A column value as JSON has it: times and dates in ISO 8601, ids as strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def csv_cell(value) -> str:
    """A column value in a CSV cell: empty for none, JSON for documents, and text a spreadsheet
    would run as a formula quoted (the JSON Lines file keeps the exact value)."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return spreadsheet_safe(value)
