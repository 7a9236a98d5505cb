"""What the issue pages read besides an issue's own page and the lists: an issue by reference,
its assignees and labels loaded apart, board columns, my work, the filter menus and the edit
form's choices."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from flask import abort, request
from sqlalchemy import bindparam, func, or_, select, union_all
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from app.core import cache
from app.extensions import db
from app.models import (
    Issue,
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
from app.projects.workflow import states_of

BOARD_PAGE = 25
REF_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9]{1,9})-(\d{1,9})$")
#: What the list pages show besides the member's own things: issues with their people and
#: labels, the filter menus, the project.
LIST_TOPICS = ("issues", "members", "labels", "projects")
#: The issue lists show the views shared with the organization too.
ISSUE_LIST_TOPICS = (*LIST_TOPICS, "shared-views")


def people_and_labels_apart(entity=Issue) -> tuple:
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


def issue_page_choices_keys() -> list[str] | None:
    """The key ``issue_page_choices`` reads, if this request knows it without a round trip."""
    labels = cache.version_read("labels")
    return (
        None if labels is None else cache.memoized_for_tenant_keys("members", "issue-choices", f"l{labels}")
    )


def saved_views_of(user_id) -> list[SavedView]:
    """The person's own saved views and those shared with the organization, by name."""
    return db.session.scalars(
        select(SavedView)
        .where(or_(SavedView.user_id == user_id, SavedView.shared))
        .order_by(SavedView.name, SavedView.id)
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
    columns = columns or {state.key: _column_ids(project, state.key) for state in states_of(project.key)}
    ids = db.session.scalars(union_all(*(column.subquery().select() for column in columns.values()))).all()
    if not ids:
        return {state: ([], False) for state in columns}
    # The project is known: joined to each card, it led the planner to read the project's issues.
    statement = (
        select(Issue)
        .options(lazyload(Issue.project), *people_and_labels_apart())
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
    return {state.key: found.get(state.key, 0) for state in states_of(project.key)}


def open_assigned_to(user_id) -> list[Issue]:
    """The person's open issues, most urgent first."""
    return (
        db.session.scalars(
            select(Issue)
            .options(*people_and_labels_apart())  # my work shows neither
            .join(IssueAssignee, IssueAssignee.issue_id == Issue.id)
            .where(IssueAssignee.user_id == user_id, Issue.closed_at.is_(None))
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
            .options(*people_and_labels_apart())
            .join(IssueWatcher, IssueWatcher.issue_id == Issue.id)
            .where(IssueWatcher.user_id == user_id, Issue.updated_at >= utcnow() - timedelta(days=7))
            .order_by(Issue.updated_at.desc())
            .limit(20)
        )
        .unique()
        .all()
    )
