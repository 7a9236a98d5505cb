"""Issues: creation, edits with their history, assignees, labels, watchers, comments, moves
(the issue page's edit form is ``edit_form``).

Every function works inside the current tenant: ids that come from forms (assignees,
labels) are looked up through the scoped session, so another tenant's ids are refused.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

from sqlalchemy import delete, func, select

from app.core import edits
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
    Notification,
    Project,
    User,
)
from app.models.base import utcnow
from app.models.work import PRIORITY_LABELS, due_date_problem
from app.notifications.services import notify
from app.plans import quotas
from app.projects import workflow
from app.projects.services import next_issue_number
from app.webhooks.events import publish
from app.webhooks.payloads import comment_event, issue_event

RANK_STEP = 1024.0


class IssueError(ValueError):
    """A refusal shown to the user as it is (answered with a 4xx)."""


def _uuids(values) -> list[uuid.UUID]:
    ids = []
    for value in values or ():
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError as exc:
            raise IssueError("That choice is not valid.") from exc
    return ids


def member_users(user_ids) -> list[User]:
    """Users among the ids who are members of this organization; any other id is refused."""
    ids = set(_uuids(user_ids))
    if not ids:
        return []
    found = db.session.scalars(
        select(User).join(Membership, Membership.user_id == User.id).where(User.id.in_(ids))
    ).all()
    if len(found) != len(ids):
        raise IssueError("Assignees must be members of this organization.")
    return sorted(found, key=lambda u: u.name)


def tenant_labels(label_ids) -> list[Label]:
    ids = set(_uuids(label_ids))
    if not ids:
        return []
    found = db.session.scalars(select(Label).where(Label.id.in_(ids))).all()
    if len(found) != len(ids):
        raise IssueError("Labels must belong to this organization.")
    return sorted(found, key=lambda label: label.name)


def _record(issue: Issue, actor, field: str, old, new) -> None:
    db.session.add(
        IssueActivity(
            issue_id=issue.id,
            actor_id=getattr(actor, "id", None),
            field=field,
            old_value=None if old is None else str(old),
            new_value=None if new is None else str(new),
        )
    )


def _touch(issue: Issue) -> None:
    issue.version = (issue.version or 0) + 1
    issue.updated_at = utcnow()


def _watch(issue: Issue, user_id) -> None:
    exists = db.session.get(IssueWatcher, (issue.tenant_id, issue.id, user_id))
    if exists is None:
        db.session.add(IssueWatcher(issue_id=issue.id, user_id=user_id))


def mentioned_user_ids(text: str) -> set[uuid.UUID]:
    """Members named with ``@handle`` (an email's local part) in ``text``."""
    from app.core.markdown import extract_mentions

    handles = extract_mentions(text or "")
    if not handles:
        return set()
    members = db.session.execute(
        select(User.id, User.email).join(Membership, Membership.user_id == User.id)
    ).all()
    return {user_id for user_id, email in members if email.split("@", 1)[0].lower() in handles}


def _rank_at_bottom(project_id, state: str) -> float:
    top = db.session.scalar(
        select(func.max(Issue.rank)).where(Issue.project_id == project_id, Issue.state == state)
    )
    return (top or 0.0) + RANK_STEP


def create_issue(
    project: Project,
    actor,
    title: str,
    description: str = "",
    state: str | None = None,
    priority: int = 0,
    assignee_ids=(),
    label_ids=(),
    due_date: date | None = None,
    estimate: int | None = None,
) -> Issue:
    if project.archived:
        raise IssueError("This project is archived: unarchive it to add issues.")
    state = state or workflow.default_state_key(project)
    closed_at = _closed_at(project.id, state)
    if problem := due_date_problem(due_date):
        raise IssueError(problem)
    assignees = member_users(assignee_ids)
    labels = tenant_labels(label_ids)
    quotas.check(None, "issues")  # before the project's row is locked: the organization's first
    issue = Issue(
        project_id=project.id,
        number=next_issue_number(project),
        title=title.strip(),
        description=(description or "").strip(),
        state=state,
        priority=priority,
        due_date=due_date,
        estimate=estimate,
        created_by_id=actor.id,
        rank=_rank_at_bottom(project.id, state),
        closed_at=closed_at,
    )
    db.session.add(issue)
    db.session.flush()
    for user in assignees:
        db.session.add(IssueAssignee(issue_id=issue.id, user_id=user.id))
    for label in labels:
        db.session.add(IssueLabel(issue_id=issue.id, label_id=label.id))
    _record(issue, actor, "created", None, issue.title)
    for user_id in {actor.id, *(u.id for u in assignees)}:
        _watch(issue, user_id)
    notify(issue, actor, [u.id for u in assignees], Notification.ASSIGNED, issue.title)
    notify(issue, actor, mentioned_user_ids(issue.description), Notification.MENTIONED, issue.title)
    db.session.flush()
    publish("issue.created", lambda: issue_event(issue))
    return issue


def _closed_at(project_id, state: str, closed_at=None):
    """The issue's ``closed_at`` in ``state`` (``workflow.closed_after``); IssueError for a state
    its project does not have."""
    try:
        return workflow.closed_after(project_id, state, closed_at)
    except workflow.WorkflowError as exc:
        raise IssueError(str(exc)) from exc


def state_name(project_id, key: str) -> str:
    """The name of the project's state ``key`` (the key itself if it has none)."""
    state = workflow.project_state(project_id, key)
    return state.name if state is not None else key


_DISPLAY = {"priority": lambda v: PRIORITY_LABELS.get(v, v)}


def update_issue(issue: Issue, actor, **changes) -> list[str]:
    """Apply field changes; each real change is recorded in the issue's history."""
    changed = []
    for field in ("title", "description", "state", "priority", "due_date", "estimate"):
        if field not in changes:
            continue
        new = changes[field]
        if field in ("title", "description") and new is not None:
            new = new.strip()
        if field == "due_date" and (problem := due_date_problem(new)):
            raise IssueError(problem)
        old = getattr(issue, field)
        if old == new:
            continue
        show = _DISPLAY.get(field, lambda v: v)
        if field == "state":
            issue.closed_at = _closed_at(issue.project_id, new, issue.closed_at)
            issue.rank = _rank_at_bottom(issue.project_id, new)
            show = lambda key: state_name(issue.project_id, key)  # noqa: E731
        setattr(issue, field, new)
        _record(
            issue,
            actor,
            field,
            show(old) if field != "description" else None,
            show(new) if field != "description" else None,
        )
        changed.append(field)
    if "description" in changed:
        notify(issue, actor, mentioned_user_ids(issue.description), Notification.MENTIONED, issue.title)
    if changed:
        _touch(issue)
        publish("issue.updated", lambda: issue_event(issue, changed))
    return changed


def set_assignees(issue: Issue, actor, user_ids) -> None:
    users = member_users(user_ids)
    current = {a.id for a in issue.assignees}
    wanted = {u.id for u in users}
    if current == wanted:
        return
    db.session.execute(delete(IssueAssignee).where(IssueAssignee.issue_id == issue.id))
    for user in users:
        db.session.add(IssueAssignee(issue_id=issue.id, user_id=user.id))
        _watch(issue, user.id)
    names = ", ".join(u.name for u in users) or None
    _record(issue, actor, "assignees", ", ".join(a.name for a in issue.assignees) or None, names)
    notify(issue, actor, wanted - current, Notification.ASSIGNED, issue.title)
    _touch(issue)
    db.session.flush()
    db.session.expire(issue, ["assignees"])
    publish("issue.updated", lambda: issue_event(issue, ["assignees"]))


def set_labels(issue: Issue, actor, label_ids) -> None:
    labels = tenant_labels(label_ids)
    if {label.id for label in issue.labels} == {label.id for label in labels}:
        return
    old = ", ".join(label.name for label in issue.labels) or None
    db.session.execute(delete(IssueLabel).where(IssueLabel.issue_id == issue.id))
    for label in labels:
        db.session.add(IssueLabel(issue_id=issue.id, label_id=label.id))
    _record(issue, actor, "labels", old, ", ".join(label.name for label in labels) or None)
    _touch(issue)
    db.session.flush()
    db.session.expire(issue, ["labels"])
    publish("issue.updated", lambda: issue_event(issue, ["labels"]))


def set_watching(issue: Issue, user, watching: bool) -> None:
    existing = db.session.get(IssueWatcher, (issue.tenant_id, issue.id, user.id))
    if watching and existing is None:
        db.session.add(IssueWatcher(issue_id=issue.id, user_id=user.id))
    elif not watching and existing is not None:
        db.session.delete(existing)


def is_watching(issue: Issue, user) -> bool:
    return db.session.get(IssueWatcher, (issue.tenant_id, issue.id, user.id)) is not None


def add_comment(issue: Issue, actor, body: str) -> Comment:
    body = (body or "").strip()
    if not body:
        raise IssueError("Write something before sending.")
    comment = Comment(issue_id=issue.id, author_id=actor.id, body=body)
    db.session.add(comment)
    watchers = set(db.session.scalars(select(IssueWatcher.user_id).where(IssueWatcher.issue_id == issue.id)))
    mentioned = mentioned_user_ids(body)
    notify(issue, actor, mentioned, Notification.MENTIONED, body)
    notify(issue, actor, watchers - mentioned, Notification.COMMENTED, body)
    _watch(issue, actor.id)
    _touch(issue)
    db.session.flush()
    publish("comment.created", lambda: comment_event(comment, issue))
    return comment


def move_issue(
    issue: Issue, actor, state: str, before_id=None, from_state: str | None = None, after_id=None
) -> None:
    """Move to ``state`` (a board column): above the issue ``before_id``, below ``after_id``, or
    at the bottom.

    ``from_state`` is the column the card was in when the board was loaded: if someone else
    moved it since (to a column other than ``state``), the move is refused (EditConflict).
    """
    closed_at = _closed_at(issue.project_id, state, issue.closed_at)
    if from_state is not None and from_state != issue.state and state != issue.state:
        refuse_conflicts(
            [edits.Conflict("state", "State", from_state, issue.state, state)], issue, {"state": issue.state}
        )
    old_state = issue.state
    if old_state == state and not (before_id or after_id):
        return
    if before_id or after_id:
        issue.rank = _rank_beside(issue, state, before_id, after_id)
    elif old_state != state:
        issue.rank = _rank_at_bottom(issue.project_id, state)
    if old_state != state:
        issue.state = state
        issue.closed_at = closed_at
        _record(
            issue,
            actor,
            "state",
            state_name(issue.project_id, old_state),
            state_name(issue.project_id, state),
        )
    _touch(issue)
    if old_state != state:
        publish("issue.updated", lambda: issue_event(issue, ["state"]))


def _rank_beside(issue: Issue, state: str, before_id=None, after_id=None) -> float:
    """A rank just above the card ``before_id`` (else just below ``after_id``) of column ``state``."""
    other = Issue.get_scoped(db.session, before_id or after_id)
    if other is None or other.project_id != issue.project_id or other.state != state:
        raise IssueError("That position is not in this column.")
    in_column = (Issue.project_id == issue.project_id, Issue.state == state)
    if before_id:
        above = db.session.scalar(select(func.max(Issue.rank)).where(*in_column, Issue.rank < other.rank))
        return ((above if above is not None else other.rank - RANK_STEP) + other.rank) / 2
    below = db.session.scalar(select(func.min(Issue.rank)).where(*in_column, Issue.rank > other.rank))
    return ((below if below is not None else other.rank + RANK_STEP) + other.rank) / 2


#: The steps of a card's own buttons on the board: one place up or down its column.
STEPS = ("up", "down")


def step_issue(issue: Issue, actor, step: str, from_state: str) -> None:
    """Move one place ``up`` or ``down`` the column ``from_state`` (nothing at its end); a card
    someone else moved to another column since is not moved (EditConflict, as ``move_issue``)."""
    if step not in STEPS:
        raise IssueError("Choose up or down.")
    in_column = select(Issue.id).where(Issue.project_id == issue.project_id, Issue.state == issue.state)
    if step == "up":
        nearest = in_column.where(Issue.rank < issue.rank).order_by(Issue.rank.desc(), Issue.id.desc())
    else:
        nearest = in_column.where(Issue.rank > issue.rank).order_by(Issue.rank, Issue.id)
    neighbour = db.session.scalar(nearest.limit(1))
    beside = {} if neighbour is None else {"before_id" if step == "up" else "after_id": neighbour}
    move_issue(issue, actor, from_state, from_state=from_state, **beside)


# --- refusing a change that collides with another -----------------------------------------


def _shown(issue: Issue, name: str, value):
    """A value of ``edit_form.edit_values`` as people read it (names, not ids)."""
    if name == "state":
        return state_name(issue.project_id, value)
    if name == "priority":
        return PRIORITY_LABELS.get(value, value)
    if name == "assignees":
        users = db.session.scalars(select(User).where(User.id.in_(_uuids(value)))).all()
        return ", ".join(sorted(u.name for u in users)) or "nobody"
    if name == "labels":
        labels = db.session.scalars(select(Label).where(Label.id.in_(_uuids(value)))).all()
        return ", ".join(sorted(label.name for label in labels)) or "none"
    return value if value not in (None, "") else "nothing"


def refuse_conflicts(conflicts, issue: Issue, current: dict):
    """Raise the conflict, naming who made each other change (from the issue's history)."""
    described = []
    for conflict in conflicts:
        last = db.session.scalar(
            select(IssueActivity)
            .where(IssueActivity.issue_id == issue.id, IssueActivity.field == conflict.field)
            .order_by(IssueActivity.created_at.desc())
            .limit(1)
        )
        by = last.actor.name if last is not None and last.actor is not None else None
        described.append(
            replace(
                conflict,
                by=by,
                theirs=_shown(issue, conflict.field, conflict.theirs),
                yours=_shown(issue, conflict.field, conflict.yours),
            )
        )
    raise edits.EditConflict(described, current)
