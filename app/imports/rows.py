"""Checking an import's rows against the mapping and the organization's members and labels."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from app.core.names import invisible_text_problem
from app.core.web import has_control_characters
from app.extensions import db
from app.imports.mapping import FIELDS, IGNORE, MappingError
from app.models import Label, Membership, User, WorkflowState
from app.models.work import PRIORITY_LABELS, due_date_problem
from app.models.workflow import CATEGORIES, CLOSED_CATEGORIES, DEFAULT_STATES

MAX_TITLE = 255
MAX_DESCRIPTION = 50_000
MAX_ESTIMATE = 1000
_LIST_SEPARATORS = re.compile(r"[,;]")


@dataclass(frozen=True)
class Problem:
    """What is wrong with one value of a row: its column (empty for the whole row), the value, why."""

    column: str
    value: str
    reason: str

    def as_json(self) -> list[str]:
        return [self.column, self.value, self.reason]


class RowProblem(ValueError):
    """One row cannot be imported; the message gives every reason, ``problems`` each one."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(problem.reason for problem in problems))
        self.problems = problems


@dataclass
class IssueRow:
    """A row that passed every check, with its values resolved to ids."""

    line: int
    import_key: str
    title: str
    description: str = ""
    #: The key of one of the project's states (None: the project's first unstarted state).
    state: str | None = None
    #: Whether that state closes the issue (completed or cancelled).
    closed: bool = False
    priority: int = 0
    assignee_ids: list[uuid.UUID] = field(default_factory=list)
    label_ids: list[uuid.UUID] = field(default_factory=list)
    due_date: date | None = None
    estimate: int | None = None
    #: The values left out of the issue (bad optional cells), and why.
    warnings: list[Problem] = field(default_factory=list)


def _choice_key(value: str) -> str:
    return "_".join(re.sub(r"[_\-]", " ", value.lower()).split())


_PRIORITIES = {
    **{str(k): k for k in PRIORITY_LABELS},
    **{_choice_key(v): k for k, v in PRIORITY_LABELS.items()},
    "none": 0,
}
_PRIORITY_NAMES = ", ".join(PRIORITY_LABELS[k] for k in sorted(PRIORITY_LABELS, reverse=True))


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


class RowChecker:
    """Checks rows against a mapping and the organization's members and labels (loaded once)."""

    def __init__(
        self, mapping: list[str], header: list[str] | None = None, strict: bool = False, project_id=None
    ):
        """``header`` names the columns in problems; ``strict`` rejects a row for a bad optional
        value; states are those of the project ``project_id`` (the default states without one)."""
        unknown = [f for f in mapping if f not in FIELDS]
        if unknown or "title" not in mapping:
            raise MappingError("The column mapping is not valid.")
        self.mapping = mapping
        self.header = header or []
        self.strict = strict
        self.columns = {f: i for i, f in enumerate(mapping) if f != IGNORE}
        members = db.session.execute(
            select(User.id, User.email, User.name).join(Membership, Membership.user_id == User.id)
        ).all()
        self.by_email = {email.lower(): user_id for user_id, email, _ in members}
        self.by_name: dict[str, list[uuid.UUID]] = {}
        for user_id, _, name in members:
            self.by_name.setdefault(name.strip(), []).append(user_id)
        labels = db.session.execute(select(Label.id, Label.name)).all()
        self.labels = {name: label_id for label_id, name in labels}
        self.labels_folded: dict[str, list[uuid.UUID]] = {}
        for label_id, name in labels:
            self.labels_folded.setdefault(name.casefold(), []).append(label_id)
        self._load_states(project_id)

    def _load_states(self, project_id) -> None:
        """The project's states by name and by key, in any case (a name first), and in words."""
        if project_id is None:
            states = [(key, name, category, 0) for key, name, category in DEFAULT_STATES]
        else:
            states = db.session.execute(
                select(
                    WorkflowState.key, WorkflowState.name, WorkflowState.category, WorkflowState.position
                ).where(WorkflowState.project_id == project_id)
            ).all()
        states = sorted(states, key=lambda s: (CATEGORIES.index(s[2]), s[3], s[0]))
        self.states = {_choice_key(key): key for key, _name, _category, _position in states}
        self.states.update({_choice_key(name): key for key, name, _category, _position in states})
        self.closed_states = {
            key for key, _name, category, _position in states if category in CLOSED_CATEGORIES
        }
        self.state_names = ", ".join(name for _key, name, _category, _position in states)

    def _value(self, cells: list[str], name: str) -> str:
        index = self.columns.get(name)
        if index is None or index >= len(cells):
            return ""
        return cells[index].strip()

    def key_of(self, cells: list[str]) -> str:
        """The row's import key: its ID column when it has one, else its mapped values."""
        external = self._value(cells, "external_id")
        if external:
            source = "id\x1f" + external
        else:
            values = [
                self._value(cells, f) if f == "description" else " ".join(self._value(cells, f).split())
                for f in FIELDS
                if f in self.columns
            ]
            source = "row\x1f" + json.dumps(values, ensure_ascii=False)
        return hashlib.sha256(source.encode()).hexdigest()

    def _member(self, value: str) -> tuple[uuid.UUID | None, str | None]:
        if "@" in value and value.lower() in self.by_email:
            return self.by_email[value.lower()], None
        found = self.by_name.get(value, [])
        if len(found) == 1:
            return found[0], None
        if len(found) > 1:
            return None, f"assignee '{_short(value)}' names several members: use their email"
        return None, f"assignee '{_short(value)}' is not a member of this organization"

    def _label(self, value: str) -> tuple[uuid.UUID | None, str | None]:
        if value in self.labels:
            return self.labels[value], None
        found = self.labels_folded.get(value.casefold(), [])
        if len(found) == 1:
            return found[0], None
        return None, f"label '{_short(value)}' does not exist (create it first)"

    def _column(self, name: str) -> str:
        """The column a field comes from, as the file's header names it."""
        index = self.columns[name]
        return (self.header[index] if index < len(self.header) else "") or FIELDS[name]

    def _ids(self, cells: list[str], name: str, find, warn) -> list[uuid.UUID]:
        """The ids a list column names, each once (``find`` gives an id or a problem per name)."""
        ids = []
        for value in _split_list(self._value(cells, name)):
            found, problem = find(value)
            if problem:
                warn(name, value, problem)
            elif found not in ids:
                ids.append(found)
        return ids

    def check(self, line: int, cells: list[str]) -> IssueRow:
        """The row's values, resolved; ``RowProblem`` naming every reason it cannot be imported.

        A bad required value (the title, the description, the row's shape) rejects the row; a bad
        optional one (state, priority, an assignee, a label, due date, estimate) is left out and
        listed in the row's ``warnings``, or rejects the row too in strict mode.
        """
        found: list[tuple[Problem, bool]] = []  # each problem, and whether it rejects the row

        def error(name: str, value: str, reason: str) -> None:
            column = self._column(name) if name else ""
            found.append((Problem(column, _short(value, 200), reason), True))

        def warn(name: str, value: str, reason: str) -> None:
            found.append((Problem(self._column(name), _short(value, 200), reason), self.strict))

        row = IssueRow(line=line, import_key=self.key_of(cells), title=self._value(cells, "title"))
        self._check_text(cells, row, error)
        self._check_choices(cells, row, warn)
        row.assignee_ids = self._ids(cells, "assignees", self._member, warn)
        row.label_ids = self._ids(cells, "labels", self._label, warn)
        self._check_numbers(cells, row, warn)
        if any(rejects for _, rejects in found):
            raise RowProblem([problem for problem, _ in found])
        row.warnings = [problem for problem, _ in found]
        return row

    def _check_text(self, cells: list[str], row: IssueRow, error) -> None:
        """The row's shape, title and description: a problem with any of them rejects the row."""
        extra = [c for c in cells[len(self.mapping) :] if c.strip()]
        if extra:
            error("", "", f"has {len(cells)} values but the header has {len(self.mapping)} columns")
        if not row.title:
            error("title", "", "the title is empty")
        elif len(row.title) > MAX_TITLE:
            error("title", row.title, f"the title is longer than {MAX_TITLE} characters")
        elif invisible_text_problem(row.title):
            error(
                "title",
                row.title,
                "the title holds invisible formatting characters (such as a right-to-left override)",
            )
        row.description = self._value(cells, "description")
        if len(row.description) > MAX_DESCRIPTION:
            error(
                "description",
                row.description,
                f"the description is longer than {MAX_DESCRIPTION:,} characters",
            )
        if has_control_characters(*cells):
            error("", "", "a value holds a control character (such as a NUL byte)")

    def _check_choices(self, cells: list[str], row: IssueRow, warn) -> None:
        """State and priority: a value that is none of the choices is left out (the project's
        first unstarted state, no priority)."""
        if state := self._value(cells, "state"):
            row.state = self.states.get(_choice_key(state))
            row.closed = row.state in self.closed_states
            if row.state is None:
                warn("state", state, f"state '{_short(state)}' is not one of {self.state_names}")
        if priority := self._value(cells, "priority"):
            row.priority = _PRIORITIES.get(_choice_key(priority), 0)
            if _choice_key(priority) not in _PRIORITIES:
                warn(
                    "priority",
                    priority,
                    f"priority '{_short(priority)}' is not one of {_PRIORITY_NAMES} (or 0 to 4)",
                )

    def _check_numbers(self, cells: list[str], row: IssueRow, warn) -> None:
        """Due date and estimate: a value that is not a date, or a whole number in range, is left out."""
        if due := self._value(cells, "due_date"):
            try:
                row.due_date = date.fromisoformat(due)
            except ValueError:
                warn("due_date", due, f"due date '{_short(due)}' is not a date like 2026-12-31")
            else:
                if problem := due_date_problem(row.due_date):
                    row.due_date = None
                    warn("due_date", due, f"due date '{_short(due)}': {problem[0].lower()}{problem[1:]}")
        if estimate := self._value(cells, "estimate"):
            try:
                row.estimate = int(estimate)
            except ValueError:
                row.estimate = None
            if row.estimate is None or not 0 <= row.estimate <= MAX_ESTIMATE:
                row.estimate = None
                warn(
                    "estimate",
                    estimate,
                    f"estimate '{_short(estimate)}' is not a whole number from 0 to {MAX_ESTIMATE}",
                )


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in _LIST_SEPARATORS.split(value) if part.strip()]
