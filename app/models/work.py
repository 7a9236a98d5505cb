"""The work itself: projects, issues and what hangs off them (labels are in ``labels``,
notifications in ``notifications``). Every table is a tenant table."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.markdown import RENDERER_VERSION, render_for_storage
from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import CacheTopic, JSONDocument, UTCDateTime, new_id, tenant_fk, utcnow
from app.models.labels import Label
from app.models.workflow import DEFAULT_STATES, WorkflowState, default_states

# The default workflow states' keys (every project starts with them: ``app.models.workflow``).
BACKLOG, TODO, IN_PROGRESS, IN_REVIEW, DONE, CANCELLED = (key for key, _name, _category in DEFAULT_STATES)

# Priorities: 0 none … 4 urgent (sorting by priority puts urgent first).
PRIORITY_LABELS = {0: "No priority", 1: "Low", 2: "Medium", 3: "High", 4: "Urgent"}

#: Due dates people can set: a typo like 0001-01-01 or 9999-12-31 is refused, not stored.
DUE_DATE_MIN, DUE_DATE_MAX = date(1900, 1, 1), date(2999, 12, 31)


def due_date_problem(value: date | None) -> str | None:
    """Why a due date cannot be used, or None (no date is fine)."""
    if value is not None and not DUE_DATE_MIN <= value <= DUE_DATE_MAX:
        return f"Choose a due date between {DUE_DATE_MIN.year} and {DUE_DATE_MAX.year}."
    return None


class Project(TenantMixin, db.Model):
    __tablename__ = "projects"
    #: Its name heads the list and board pages; issue rows and cards show its key.
    __cache_topics__ = ("projects", "issues")

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    #: The last issue number handed out; issues take the next one atomically.
    issue_counter: Mapped[int] = mapped_column(default=0)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    #: Its workflow states in board order (``app.projects.workflow`` changes them).
    states = relationship(
        WorkflowState,
        primaryjoin="and_(Project.tenant_id == WorkflowState.tenant_id, "
        "Project.id == WorkflowState.project_id)",
        order_by=(WorkflowState.position, WorkflowState.id),
        cascade="all, delete-orphan",
        lazy="select",
    )

    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        CheckConstraint("issue_counter >= 0", name="issue_counter_positive"),
    )

    def __init__(self, **fields):
        """A new project, with the default workflow states unless ``states`` are given."""
        fields.setdefault("states", default_states())
        super().__init__(**fields)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class Issue(TenantMixin, db.Model):
    __tablename__ = "issues"
    #: Lists and boards show every issue; its own page shows it (the topic "issue" per issue id).
    __cache_topics__ = ("issues", CacheTopic("issue", per="id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID]
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    #: The description's sanitized HTML, rendered when it is written (``rendered_columns``),
    #: and the renderer version that made it; NULL (or an older version) is rendered on read.
    description_html: Mapped[str | None] = mapped_column(Text)
    description_html_version: Mapped[int | None]
    #: The key of one of its project's workflow states.
    state: Mapped[str] = mapped_column(String(16), default=TODO)
    priority: Mapped[int] = mapped_column(default=0)
    due_date: Mapped[date | None] = mapped_column(Date)
    estimate: Mapped[int | None]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Bumped on every change: part of cache keys and ETags. Every UPDATE of the row checks
    #: it (``version_id_col``): a write based on an older read fails instead of overwriting.
    version: Mapped[int] = mapped_column(default=1)
    #: Position inside its board column (smaller first).
    rank: Mapped[float] = mapped_column(default=0.0)
    #: Set on issues a CSV import created: a hash of the row (or of its ID column), so the same
    #: file imported again creates nothing twice (``app/imports``).
    import_key: Mapped[str | None] = mapped_column(String(64))

    project = relationship(Project, lazy="joined", innerjoin=True)
    created_by = relationship("User", lazy="select")
    assignees = relationship(
        "User",
        secondary="issue_assignees",
        primaryjoin="and_(Issue.tenant_id == IssueAssignee.tenant_id, Issue.id == IssueAssignee.issue_id)",
        secondaryjoin="User.id == IssueAssignee.user_id",
        lazy="selectin",
        # Loaded through the issues (not straight from issue_assignees by key tuples), so the
        # tenant criteria on Issue reach the query: one tenant_id, one shard on Citus.
        omit_join=False,
        viewonly=True,
        order_by="User.name",
    )
    labels = relationship(
        Label,
        secondary="issue_labels",
        primaryjoin="and_(Issue.tenant_id == IssueLabel.tenant_id, Issue.id == IssueLabel.issue_id)",
        secondaryjoin="and_(Label.tenant_id == IssueLabel.tenant_id, Label.id == IssueLabel.label_id)",
        lazy="selectin",
        viewonly=True,
        order_by=Label.folded_name,
    )

    __table_args__ = (
        tenant_fk(["project_id"], "projects"),
        UniqueConstraint("tenant_id", "project_id", "number"),
        ForeignKeyConstraint(
            ["tenant_id", "project_id", "state"],
            ["workflow_states.tenant_id", "workflow_states.project_id", "workflow_states.key"],
        ),
        CheckConstraint("priority BETWEEN 0 AND 4", name="priority_range"),
        CheckConstraint("estimate IS NULL OR estimate >= 0", name="estimate_positive"),
        # A board column's order (rank, id) in full: it reads its first cards and stops.
        Index(
            "ix_issues_tenant_id_project_id_state_rank_id", "tenant_id", "project_id", "state", "rank", "id"
        ),
        Index("ix_issues_tenant_id_updated_at", "tenant_id", "updated_at"),
        Index("ix_issues_import_key", "tenant_id", "project_id", "import_key", unique=True),
    )

    #: Services bump ``version`` themselves (``app.issues.services``); the mapper adds
    #: ``WHERE version = <the version read>`` to every UPDATE and raises StaleDataError when
    #: another transaction got there first.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    #: Attributes that name an issue in URLs (``/<org>/issues/WEB-42``).
    __url_keys__ = ("ref",)

    @property
    def ref(self) -> str:
        return f"{self.project.key}-{self.number}"

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


class IssueAssignee(TenantMixin, db.Model):
    __tablename__ = "issue_assignees"
    #: Issue rows, board cards and the issue's page show the assignees.
    __cache_topics__ = ("issues", CacheTopic("issue", per="issue_id"))

    issue_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (
        tenant_fk(["issue_id"], "issues"),
        Index("ix_issue_assignees_user_id", "tenant_id", "user_id"),
    )


class IssueLabel(TenantMixin, db.Model):
    __tablename__ = "issue_labels"
    #: Issue rows, board cards and the issue's page show the labels.
    __cache_topics__ = ("issues", CacheTopic("issue", per="issue_id"))

    issue_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    label_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)

    __table_args__ = (
        tenant_fk(["issue_id"], "issues"),
        tenant_fk(["label_id"], "labels"),
        Index("ix_issue_labels_label_id", "tenant_id", "label_id"),
    )


class IssueWatcher(TenantMixin, db.Model):
    __tablename__ = "issue_watchers"
    #: The issue's page shows whether the viewer watches it.
    __cache_topics__ = (CacheTopic("issue", per="issue_id"),)

    issue_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (tenant_fk(["issue_id"], "issues"),)


class Comment(TenantMixin, db.Model):
    __tablename__ = "comments"
    #: Shown on the issue's page, and search results are found and excerpted from comments
    #: too (``app.issues.search``).
    __cache_topics__ = ("comments", CacheTopic("issue", per="issue_id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    issue_id: Mapped[uuid.UUID]
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    #: The body's sanitized HTML and its renderer version, as ``Issue.description_html``.
    body_html: Mapped[str | None] = mapped_column(Text)
    body_html_version: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author = relationship("User", lazy="joined")

    __table_args__ = (
        tenant_fk(["issue_id"], "issues"),
        Index("ix_comments_issue", "tenant_id", "issue_id", "created_at"),
        Index("ix_comments_tenant_created", "tenant_id", "created_at", "id"),
    )


#: Markdown columns and where their rendered HTML is stored: (HTML column, version column).
RENDERED = {
    Issue: {"description": ("description_html", "description_html_version")},
    Comment: {"body": ("body_html", "body_html_version")},
}


def rendered_columns(model, values: dict) -> dict:
    """The stored HTML of the Markdown among ``values`` (a row's column values), for writers
    that insert rows without the ORM (restoring an export)."""
    found = {}
    for source, (html, version) in RENDERED.get(model, {}).items():
        if source in values:
            found[html], found[version] = render_for_storage(values[source]), RENDERER_VERSION
    return found


def _render_when_set(model, source: str, html: str, version: str) -> None:
    @event.listens_for(getattr(model, source), "set")
    def render(target, value, _old, _initiator):
        setattr(target, html, render_for_storage(value))
        setattr(target, version, RENDERER_VERSION)


for _model, _columns in RENDERED.items():
    for _source, (_html, _version) in _columns.items():
        _render_when_set(_model, _source, _html, _version)


class IssueActivity(TenantMixin, db.Model):
    """One change to an issue: which field, from what, to what, by whom."""

    __tablename__ = "issue_activities"
    #: Shown on the issue's page, and in the organization's latest activity (its overview).
    __cache_topics__ = ("activity", CacheTopic("issue", per="issue_id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    issue_id: Mapped[uuid.UUID]
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor = relationship("User", lazy="joined")

    __table_args__ = (
        tenant_fk(["issue_id"], "issues"),
        Index("ix_issue_activities_issue", "tenant_id", "issue_id", "created_at"),
        Index("ix_issue_activities_tenant_created", "tenant_id", "created_at", "id"),
    )


class SavedView(TenantMixin, db.Model):
    """A person's named set of list filters, kept personal or shared with the organization."""

    __tablename__ = "saved_views"
    #: The owner's saved views, listed on their issue lists; shared ones on everyone's lists.
    __cache_topics__ = (CacheTopic("views", per="user_id"), "shared-views")

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID | None]
    name: Mapped[str] = mapped_column(String(80))
    filters: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    #: Listed for every member of the organization (else for its owner only).
    shared: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        tenant_fk(["project_id"], "projects"),
        UniqueConstraint("tenant_id", "user_id", "name"),
    )
