"""A project's workflow states: what pages show (in board order, by name, as form choices) and
the changes its settings make (add, rename, reorder, delete moving the issues).

The states shown are read once per organization and memoized under the ``projects`` topic,
which every write to a state moves (``WorkflowState.__cache_topics__``); the changes read the
rows themselves. A state's key never changes, so an address or a saved view naming it keeps
working when it is renamed.
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

from flask import g, has_app_context
from sqlalchemy import case, func, select, update

from app.core import audit, cache
from app.core.tenancy import require_tenant
from app.extensions import db
from app.models import Issue, Project, WorkflowState
from app.models.base import utcnow
from app.models.workflow import (
    CATEGORIES,
    CATEGORY_LABELS,
    CLOSED_CATEGORIES,
    REQUIRED_CATEGORIES,
    STATE_NAME_LENGTH,
    UNSTARTED,
    state_key_for,
)


class WorkflowError(ValueError):
    """A refusal shown to the person as it is."""


class State(NamedTuple):
    """A workflow state as pages show it."""

    project_id: uuid.UUID
    project_key: str
    key: str
    name: str
    category: str
    position: int

    @property
    def closed(self) -> bool:
        return self.category in CLOSED_CATEGORIES


def _board_order(state) -> tuple:
    return (CATEGORIES.index(state.category), state.position, state.key)


#: Where a request keeps the states it read: (tenant, ``projects`` version, states).
_READ = "workflow_states"


def tenant_states() -> list[State]:
    """Every state of the organization's projects, by project and in board order (memoized, and
    read once per request: a page asks for them from several places)."""
    tenant_id, version = require_tenant(), cache.version("projects")
    request_globals = g._get_current_object() if has_app_context() else None
    read = request_globals.get(_READ) if request_globals is not None else None
    if read is not None and read[:2] == (tenant_id, version):
        return read[2]

    def compute():
        rows = db.session.execute(
            select(WorkflowState, Project.key).join(Project, Project.id == WorkflowState.project_id)
        ).all()
        states = [State(s.project_id, key, s.key, s.name, s.category, s.position) for s, key in rows]
        return sorted(states, key=lambda s: (s.project_key, *_board_order(s)))

    states = cache.memoize_for_tenant("projects", "workflow-states", compute)
    if request_globals is not None:
        setattr(request_globals, _READ, (tenant_id, version, states))
    return states


def _tenant_states_keys() -> list[str] | None:
    """The key ``tenant_states`` will read, for a page rendered anew to read it with its first read."""
    if has_app_context() and g.get(_READ) is not None:
        return None
    return cache.memoized_for_tenant_keys("projects", "workflow-states")


cache.read_when_rendering(_tenant_states_keys)


def states_of(project_key: str) -> list[State]:
    """The states of the project ``project_key`` in board order: categories in their fixed
    order, positions within."""
    return [state for state in tenant_states() if state.project_key == project_key]


def state_choices(project_key: str) -> list[tuple[str, str]]:
    """The states an issue of the project ``project_key`` may be put in, as (key, name), in board
    order: every state menu (new issue, the issue's edit form, the board's move menus) takes
    them from here."""
    return [(state.key, state.name) for state in states_of(project_key)]


def state_names(project_key: str) -> dict[str, str]:
    """The project's state names by key, in board order."""
    return dict(state_choices(project_key))


def names_by_project() -> dict[str, dict[str, str]]:
    """Each project's state names by key, by project key: rows of several projects show each
    issue's state by its own project's name (``state_badge(i.state, names, i.ref)``)."""
    found: dict[str, dict[str, str]] = {}
    for state in tenant_states():
        found.setdefault(state.project_key, {})[state.key] = state.name
    return found


def organization_state_labels() -> dict[str, str]:
    """The states across projects, by key, for filters over several projects: a key names the
    same step in each project that has it (``todo`` matches every project's Todo), shown with
    each of its names ("Todo / To do" when projects call it differently). In board order."""
    names: dict[str, list[str]] = {}
    for state in sorted(tenant_states(), key=_board_order):
        known = names.setdefault(state.key, [])
        if state.name not in known:
            known.append(state.name)
    return {key: " / ".join(found) for key, found in names.items()}


# --- what the issue services ask ---------------------------------------------------------------


def project_state(project_id, key: str) -> WorkflowState | None:
    """The state ``key`` of the project, read now (None when the project has none of that key)."""
    return db.session.scalar(
        select(WorkflowState).where(WorkflowState.project_id == project_id, WorkflowState.key == key)
    )


def default_state_key(project: Project) -> str:
    """Where a new issue starts: the project's first unstarted state."""
    states = _rows_of(project)
    return next(state.key for state in states if state.category == UNSTARTED)


def closed_after(project_id, key: str, closed_at=None):
    """The ``closed_at`` an issue has in state ``key``: kept (or now) in a completed or cancelled
    state, None in any other. Raises WorkflowError for a state the project does not have."""
    state = project_state(project_id, key)
    if state is None:
        raise WorkflowError("Choose one of the listed states.")
    return (closed_at or utcnow()) if state.is_closed else None


# --- the project settings' changes -------------------------------------------------------------


def _rows_of(project: Project) -> list[WorkflowState]:
    rows = db.session.scalars(select(WorkflowState).where(WorkflowState.project_id == project.id)).all()
    return sorted(rows, key=_board_order)


def _state_or_error(project: Project, key: str) -> WorkflowState:
    state = project_state(project.id, key)
    if state is None:
        raise WorkflowError("That state is not one of this project's.")
    return state


def _checked_name(project: Project, name: str, renaming: WorkflowState | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise WorkflowError("Name the state.")
    if len(name) > STATE_NAME_LENGTH:
        raise WorkflowError(f"Keep the name within {STATE_NAME_LENGTH} characters.")
    for other in _rows_of(project):
        if other is not renaming and other.name.casefold() == name.casefold():
            raise WorkflowError(f"This project already has a state called {other.name}.")
    return name


def add_state(project: Project, name: str, category: str) -> WorkflowState:
    """A new state at the end of its category."""
    if category not in CATEGORIES:
        raise WorkflowError("Choose one of the listed categories.")
    name = _checked_name(project, name)
    rows = _rows_of(project)
    state = WorkflowState(
        project_id=project.id,
        key=state_key_for(name, {row.key for row in rows}),
        name=name,
        category=category,
        position=max((row.position for row in rows), default=-1) + 1,
    )
    db.session.add(state)
    db.session.flush()
    audit.record(
        "state.added", target=project, key=project.key, state=state.key, name=name, category=category
    )
    return state


def rename_state(project: Project, key: str, name: str) -> WorkflowState:
    state = _state_or_error(project, key)
    old, state.name = state.name, _checked_name(project, name, renaming=state)
    if old != state.name:
        audit.record("state.renamed", target=project, key=project.key, state=key, old=old, name=state.name)
    return state


#: The directions a state moves in its category on the settings page.
MOVES = ("up", "down")


def move_state(project: Project, key: str, direction: str) -> None:
    """One place up or down among the states of its category (nothing at either end)."""
    if direction not in MOVES:
        raise WorkflowError("Choose up or down.")
    state = _state_or_error(project, key)
    same = [row for row in _rows_of(project) if row.category == state.category]
    index = same.index(state) + (-1 if direction == "up" else 1)
    if not 0 <= index < len(same):
        return
    same[same.index(state)], same[index] = same[index], state
    # The category renumbered in its new order (the board sorts by category first).
    for position, row in enumerate(same):
        row.position = position


def issue_counts(project: Project) -> dict[str, int]:
    """The number of the project's issues in each of its states that has any."""
    return dict(
        db.session.execute(
            select(Issue.state, func.count()).where(Issue.project_id == project.id).group_by(Issue.state)
        ).all()
    )


def issue_count(project: Project, key: str) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Issue).where(Issue.project_id == project.id, Issue.state == key)
    )


def delete_problem(project: Project, key: str) -> str | None:
    """Why the state cannot be deleted (the last of a category every project keeps), or None."""
    state = _state_or_error(project, key)
    if state.category in REQUIRED_CATEGORIES and not any(
        row.category == state.category and row is not state for row in _rows_of(project)
    ):
        label = CATEGORY_LABELS[state.category].lower()
        return f"{state.name} is the project's only {label} state: add another {label} state first."
    return None


def delete_state(project: Project, key: str, move_to: str | None = None) -> int:
    """Delete the state, its issues moved to the state ``move_to`` of the same project first (in
    the same transaction); returns how many moved."""
    state = _state_or_error(project, key)
    if problem := delete_problem(project, key):
        raise WorkflowError(problem)
    moved = issue_count(project, key)
    if moved:
        if not move_to or move_to == key:
            raise WorkflowError(f"Choose where the issues in {state.name} go.")
        target = _state_or_error(project, move_to)
        now = utcnow()
        closed_at = (
            case((Issue.closed_at.is_(None), now), else_=Issue.closed_at) if target.is_closed else None
        )
        db.session.execute(
            update(Issue)
            .where(Issue.project_id == project.id, Issue.state == key)
            .values(state=target.key, closed_at=closed_at, version=Issue.version + 1, updated_at=now)
            .execution_options(synchronize_session="fetch")
        )
    db.session.delete(state)
    db.session.flush()
    audit.record("state.deleted", target=project, key=project.key, state=key, name=state.name, moved=moved)
    return moved
