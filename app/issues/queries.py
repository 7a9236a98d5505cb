"""What the issue pages read: an issue by reference, lists with filters, sorting and keyset
pagination (a fixed number of queries), board columns, my work, the filter menus."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import abort, request
from sqlalchemy import (
    Date,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from app.core import cache
from app.extensions import db
from app.models import (
    Comment,
    Issue,
    IssueActivity,
    IssueAssignee,
    IssueLabel,
    IssueWatcher,
    Label,
    Membership,
    Project,
    SavedView,
    User,
)
from app.models.base import utcnow
from app.models.labels import label_color_name
from app.models.work import CLOSED_STATES, PRIORITY_LABELS, STATES

PAGE_SIZE = 50
BOARD_PAGE = 25
REF_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9]{1,9})-(\d{1,9})$")
#: What the list pages show besides the member's own things: issues with their people and
#: labels, the filter menus, the project.
LIST_TOPICS = ("issues", "members", "labels", "projects")
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
    from datetime import datetime

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
    statement = select(Issue).options(*_apart())
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


def _apart(entity=Issue) -> tuple:
    """Options for a query of issues whose assignees and labels ``with_people_and_labels`` loads."""
    return (lazyload(entity.assignees), lazyload(entity.labels))


def _ids_in(column, ids):
    """``column IN (…)`` with the ids written into the statement (they are uuids, never text):
    even the generic plan of a prepared statement, made for an average tenant, then knows which
    and how many rows it asks for, and reads them by key."""
    return column.in_(bindparam(None, list(ids), expanding=True, literal_execute=True))


def with_people_and_labels(issues: list[Issue]) -> list[Issue]:
    """``issues`` with their assignees and labels loaded: three queries whatever their number, by
    the tenant and the issue ids (``tenant_id = … AND issue_id IN (…)``, the primary key's prefix:
    these issues' index entries alone), then the labels by key. The relationships' own selectin
    loads find them by ``(tenant_id, id) IN ((…), …)`` tuples, which the planner reads as an OR of
    pairs: prepared, their generic plan read every issue of a large tenant; and a join from the
    labels reads every issue of each label."""
    if not issues:
        return issues
    ids = [issue.id for issue in issues]
    people: dict[uuid.UUID, list[User]] = defaultdict(list)
    found = db.session.execute(
        select(IssueAssignee.issue_id, User)
        .join(User, User.id == IssueAssignee.user_id)
        .where(_ids_in(IssueAssignee.issue_id, ids))
        .order_by(User.name)
    )
    for issue_id, user in found:
        people[issue_id].append(user)
    links = db.session.execute(
        select(IssueLabel.issue_id, IssueLabel.label_id).where(_ids_in(IssueLabel.issue_id, ids))
    )
    label_ids: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for issue_id, label_id in links:
        label_ids[issue_id].append(label_id)
    wanted = {label_id for found in label_ids.values() for label_id in found}
    named = (
        db.session.scalars(select(Label).where(_ids_in(Label.id, wanted)).order_by(Label.folded_name)).all()
        if wanted
        else []
    )
    for issue in issues:
        set_committed_value(issue, "assignees", people[issue.id])
        mine = set(label_ids[issue.id])
        set_committed_value(issue, "labels", [label for label in named if label.id in mine])
    return issues


def _as_uuid(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.UUID(int=0)  # matches nothing


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def issue_or_404(issue_ref: str) -> Issue:
    """The issue a reference names. A POST reads it under a row lock (held until the commit),
    so the request's checks and writes see no other change in between."""
    match = REF_PATTERN.match(issue_ref)
    if not match:
        abort(404)
    statement = (
        select(Issue)
        .join(Project)
        .where(Project.key == match.group(1).upper(), Issue.number == int(match.group(2)))
    )
    if request.method == "POST":
        statement = statement.with_for_update(of=Issue).execution_options(populate_existing=True)
    issue = db.session.scalar(statement)
    if issue is None:
        abort(404)
    return issue


def canonical_ref_or_404(issue_ref: str) -> str:
    """The reference as the issue's ``ref`` spells it (``web-07`` is ``WEB-7``)."""
    match = REF_PATTERN.match(issue_ref)
    if not match:
        abort(404)
    return f"{match.group(1).upper()}-{int(match.group(2))}"


def issue_stamp_or_404(issue_ref: str) -> tuple[uuid.UUID, int]:
    """The id and version of the issue a reference names (one small query), for pages that
    serve the issue from the cache while it has not changed."""
    match = REF_PATTERN.match(issue_ref)
    if not match:
        abort(404)
    found = db.session.execute(
        select(Issue.id, Issue.version)
        .join(Project)
        .where(Project.key == match.group(1).upper(), Issue.number == int(match.group(2)))
    ).first()
    if found is None:
        abort(404)
    return found.id, found.version


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
    ``issue_page_choices``.)"""
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


def members() -> list[User]:
    return db.session.scalars(
        select(User).join(Membership, Membership.user_id == User.id).order_by(User.name)
    ).all()


def labels() -> list[Label]:
    return db.session.scalars(select(Label).order_by(Label.folded_name)).all()


def labels_named(label_ids) -> list[Choice]:
    """The labels with these ids (as text), by name, as ``issue_page_choices`` gives them."""
    return _named(Label, label_ids)


def people_named(user_ids) -> list[Choice]:
    """The people with these ids (as text), by name, members or not (someone assigned who has
    left the organization since)."""
    return _named(User, user_ids)


def _named(model, ids) -> list[Choice]:
    statement = select(model).where(model.id.in_([uuid.UUID(i) for i in ids])).order_by(model.name)
    return [Choice(str(row.id), row.name, getattr(row, "color", "")) for row in db.session.scalars(statement)]


@dataclass(frozen=True)
class Choice:
    """A person or label as a filter choice (plain values, so it can be cached)."""

    id: str
    name: str
    #: A label's colour (empty for a person).
    color: str = ""

    @property
    def color_name(self) -> str:
        return label_color_name(self.color)


def filter_choices() -> tuple[list[Choice], list[Choice]]:
    """Members and labels for the filter menus, cached per tenant until either changes."""

    def compute():
        people = [Choice(str(u.id), u.name) for u in members()]
        return people, [Choice(str(label.id), label.name) for label in labels()]

    return cache.memoize_for_tenant("members", "filter-choices", compute, f"l{cache.version('labels')}")


def issue_page_choices() -> tuple[list[Choice], list[Choice], dict[str, str]]:
    """An issue page's edit-form choices (members, labels) and the member ids by the handle that
    mentions them (an email's first part, lower-cased); cached per tenant until either changes."""

    def compute():
        people = members()
        handles = {u.email.split("@", 1)[0].lower(): str(u.id) for u in people}
        choices = [Choice(str(u.id), u.name) for u in people]
        label_choices = [Choice(str(label.id), label.name, label.color) for label in labels()]
        return choices, label_choices, handles

    return cache.memoize_for_tenant("members", "issue-choices", compute, f"l{cache.version('labels')}")


def saved_views_of(user_id) -> list[SavedView]:
    return db.session.scalars(
        select(SavedView).where(SavedView.user_id == user_id).order_by(SavedView.name)
    ).all()


def board_column(project: Project, state: str, after_rank: float | None = None):
    """One page of a board column's cards, and whether more follow."""
    statement = _column_ids(project, state)
    if after_rank is not None:
        statement = statement.where(Issue.rank > after_rank)
    return board_columns(project, {state: statement})[state]


def _column_ids(project: Project, state: str):
    """The ids of a column's first cards and of the one after them: the first entries of an index
    in this order, read without the rows (so no estimate of the column's size can make the
    planner read the whole column and sort it instead)."""
    return (
        select(Issue.id)
        .where(Issue.project_id == project.id, Issue.state == state)
        .order_by(Issue.rank, Issue.id)
        .limit(BOARD_PAGE + 1)
    )


def board_columns(project: Project, columns: dict | None = None) -> dict[str, tuple[list[Issue], bool]]:
    """Each column's first page of cards and whether more follow, by state: the cards' ids (an
    index's first entries per column), their rows by key, then their assignees and labels; only
    the cards shown are read, in as many queries whatever their number."""
    columns = columns or {state: _column_ids(project, state) for state in STATES}
    ids = db.session.scalars(union_all(*(column.subquery().select() for column in columns.values()))).all()
    if not ids:
        return {state: ([], False) for state in columns}
    # The project is known: joined to each card, it led the planner to read the project's issues.
    statement = (
        select(Issue)
        .options(lazyload(Issue.project), *_apart())
        .where(_ids_in(Issue.id, ids))
        .order_by(Issue.rank, Issue.id)
    )
    cards = list(db.session.scalars(statement))
    for card in cards:
        set_committed_value(card, "project", project)
    by_state: dict[str, list[Issue]] = {state: [] for state in columns}
    for card in with_people_and_labels(cards):
        if card.state in by_state:  # else moved to a column not asked for since its id was read
            by_state[card.state].append(card)
    return {state: (found[:BOARD_PAGE], len(found) > BOARD_PAGE) for state, found in by_state.items()}


def column_counts(project: Project) -> dict[str, int]:
    rows = db.session.execute(
        select(Issue.state, func.count()).where(Issue.project_id == project.id).group_by(Issue.state)
    ).all()
    found = dict(rows)
    return {state: found.get(state, 0) for state in STATES}


def open_assigned_to(user_id) -> list[Issue]:
    """The person's open issues, most urgent first."""
    return (
        db.session.scalars(
            select(Issue)
            .options(*_apart())  # my work shows neither
            .join(IssueAssignee, IssueAssignee.issue_id == Issue.id)
            .where(IssueAssignee.user_id == user_id, Issue.state.not_in(CLOSED_STATES))
            .order_by(Issue.priority.desc(), Issue.updated_at.desc())
            .limit(50)
        )
        .unique()
        .all()
    )


def watched_recently_updated(user_id) -> list[Issue]:
    """Issues the person watches that changed in the last week."""
    return (
        db.session.scalars(
            select(Issue)
            .options(*_apart())
            .join(IssueWatcher, IssueWatcher.issue_id == Issue.id)
            .where(IssueWatcher.user_id == user_id, Issue.updated_at >= utcnow() - timedelta(days=7))
            .order_by(Issue.updated_at.desc())
            .limit(20)
        )
        .unique()
        .all()
    )
