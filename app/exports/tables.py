"""What an export holds, table by table: one place for the export's format.

Each table is a SELECT of the current tenant's rows (scoped like every ORM query) with
people named by email and issues by their reference (``WEB-42``) next to the raw ids, in
an order that depends only on the data's natural keys. Two exports of the same content,
whatever the ids, therefore hold the same rows in the same order.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Select, String, cast, literal, select
from sqlalchemy.orm import aliased

from app.exports.readback import ExportTable, Person, ReadBack, Reference
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
    WorkflowState,
)
from app.models.work import PRIORITY_LABELS, due_date_problem
from app.models.workflow import CATEGORIES, DEFAULT_STATES

FORMAT = "worklane-export"
#: Bumped when a table or column changes meaning; the import refuses versions it does not know.
#: 2: projects' workflow states (``workflow_states``); a version 1 export restores with the defaults.
FORMAT_VERSION = 2
#: The versions the import reads.
FORMAT_VERSIONS = (1, 2)


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


def _workflow_states() -> Select:
    return (
        select(
            (Project.key + literal(":") + WorkflowState.key).label("state"),
            Project.key.label("project"),
            WorkflowState.key,
            WorkflowState.name,
            WorkflowState.category,
            WorkflowState.position,
            WorkflowState.created_at,
            WorkflowState.id,
        )
        .join(Project, Project.id == WorkflowState.project_id)
        .order_by(Project.key, WorkflowState.position, WorkflowState.key)
    )


def default_workflow_states(project_ids) -> list[dict]:
    """The rows of the default states of each project (restoring an export made before projects
    had their own states: its issues' states are the defaults' keys)."""
    return [
        {"project_id": project_id, "key": key, "name": name, "category": category, "position": position}
        for project_id in project_ids
        for position, (key, name, category) in enumerate(DEFAULT_STATES)
    ]


def _state_problem(values: dict) -> str | None:
    if values["category"] not in CATEGORIES:
        return f"category {values['category']!r} is not one of {', '.join(CATEGORIES)}."
    return None


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


def _of_issues(statement: Select, model) -> Select:
    """``statement`` joined to each row's issue and the issue's project (for ``_issue_ref``)."""
    return statement.join(Issue, Issue.id == model.issue_id).join(Project, Project.id == Issue.project_id)


def _issue_people(model) -> Callable[[], Select]:
    def statement() -> Select:
        person = aliased(User)
        return (
            _of_issues(select(_issue_ref(), _email(person, "user"), model.issue_id, model.user_id), model)
            .join(person, person.id == model.user_id)
            .order_by(Project.key, Issue.number, person.email)
        )

    return statement


def _issue_labels() -> Select:
    selected = select(_issue_ref(), Label.name.label("label"), IssueLabel.issue_id, IssueLabel.label_id)
    return (
        _of_issues(selected, IssueLabel)
        .join(Label, Label.id == IssueLabel.label_id)
        .order_by(Project.key, Issue.number, Label.name)
    )


def _issue_entries(model, person: str, *columns) -> Callable[[], Select]:
    """An issue's comments or history, oldest first: each with the email of its ``person``."""

    def statement() -> Select:
        who = aliased(User)
        selected = select(_issue_ref(), _email(who, person), *columns, model.id, model.issue_id)
        return (
            _of_issues(selected, model)
            .outerjoin(who, who.id == getattr(model, f"{person}_id"))
            .order_by(Project.key, Issue.number, model.created_at, model.id)
        )

    return statement


def _saved_views() -> Select:
    owner = aliased(User)
    project = aliased(Project)
    return (
        select(
            _email(owner, "user"),
            project.key.label("project"),
            SavedView.name,
            SavedView.filters,
            SavedView.shared,
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


def _issue_problem(values: dict) -> str | None:
    """What the database or the issue form would refuse in an issue's values."""
    if values["priority"] not in PRIORITY_LABELS:
        return f"priority {values['priority']!r} is not one of 0 to 4."
    if values["estimate"] is not None and values["estimate"] < 0:
        return "the estimate is below 0."
    return due_date_problem(values["due_date"])


_ISSUE = Reference("issue_id", "issue", "issues")


def _people_of_issues(use: str) -> ReadBack:
    return ReadBack((), new_id=False, references=(_ISSUE,), people=(Person("user_id", "user", use, True),))


#: Every table, in the order the import needs them (what a row refers to comes first).
TABLES: tuple[ExportTable, ...] = (
    ExportTable(
        "projects",
        Project,
        _projects,
        ReadBack(
            ("key", "name", "description", "issue_counter", "archived_at", "created_at", "updated_at"),
            key="key",
            people=(Person("created_by_id", "created_by", "projects created"),),
            ids_in_documents=True,
        ),
    ),
    ExportTable(
        "workflow_states",
        WorkflowState,
        _workflow_states,
        ReadBack(
            ("key", "name", "category", "position", "created_at"),
            key="state",
            references=(Reference("project_id", "project", "projects"),),
            problem=_state_problem,
            since_version=2,
            missing_rows=default_workflow_states,
        ),
    ),
    ExportTable(
        "labels",
        Label,
        _labels,
        ReadBack(("name", "color", "created_at"), key="name", ids_in_documents=True),
    ),
    ExportTable(
        "issues",
        Issue,
        _issues,
        ReadBack(
            (
                "number",
                "title",
                "description",
                "state",
                "priority",
                "due_date",
                "estimate",
                "created_at",
                "updated_at",
                "closed_at",
                "version",
                "rank",
            ),
            key="issue",
            references=(Reference("project_id", "project", "projects"),),
            people=(Person("created_by_id", "created_by", "issues created"),),
            problem=_issue_problem,
        ),
    ),
    ExportTable(
        "issue_assignees",
        IssueAssignee,
        _issue_people(IssueAssignee),
        _people_of_issues("assignments skipped"),
    ),
    ExportTable(
        "issue_labels",
        IssueLabel,
        _issue_labels,
        ReadBack((), new_id=False, references=(_ISSUE, Reference("label_id", "label", "labels"))),
    ),
    ExportTable(
        "issue_watchers",
        IssueWatcher,
        _issue_people(IssueWatcher),
        _people_of_issues("watches skipped"),
    ),
    ExportTable(
        "comments",
        Comment,
        _issue_entries(Comment, "author", Comment.body, Comment.created_at, Comment.updated_at),
        ReadBack(
            ("body", "created_at", "updated_at"),
            references=(_ISSUE,),
            people=(Person("author_id", "author", "comments kept without author"),),
        ),
    ),
    ExportTable(
        "issue_activities",
        IssueActivity,
        _issue_entries(
            IssueActivity,
            "actor",
            IssueActivity.field,
            IssueActivity.old_value,
            IssueActivity.new_value,
            IssueActivity.created_at,
        ),
        ReadBack(
            ("field", "old_value", "new_value", "created_at"),
            references=(_ISSUE,),
            people=(Person("actor_id", "actor", "history kept without actor"),),
        ),
    ),
    ExportTable(
        "saved_views",
        SavedView,
        _saved_views,
        ReadBack(
            ("name", "filters", "created_at"),
            references=(Reference("project_id", "project", "projects", optional=True),),
            people=(Person("user_id", "user", "saved views skipped", True),),
            documents=("filters",),
            added_later=(("shared", False),),
        ),
    ),
    ExportTable(
        "notifications",
        Notification,
        _notifications,
        ReadBack(
            ("kind", "excerpt", "created_at", "read_at", "emailed_at"),
            references=(_ISSUE,),
            people=(
                Person("user_id", "user", "notifications skipped", True),
                Person("actor_id", "actor", "notifications kept without actor"),
            ),
        ),
    ),
)
