"""CSV import of issues: the upload, the column mapping, checking rows, creating issues in batches.

The web process checks and stores the upload (``store_upload``) and proposes a mapping
(``guess_mapping``); the job (``workers/imports.py``) reads the stored file row by row
(``read_rows``), checks each one (``RowChecker``) and creates the good ones a batch at a time
(``create_issues``).

Re-imports: each created issue keeps an ``import_key``, a hash of its row's mapped values (or of
its ID column when one is mapped), unique per project. A row whose key already exists is counted
as a duplicate and skipped, so importing the same file twice, or a job run again after its
worker died, creates nothing twice.

Labels are matched by name and never created: an unknown label is reported as a bad row (a typo
would otherwise create a stray label). Assignees are matched among the organization's members
by email or by exact name. Imported issues notify nobody; their assignees watch them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import IO

from sqlalchemy import func, select, update

from app.core.names import invisible_text_problem
from app.core.storage import file_store, tenant_key
from app.core.web import has_control_characters
from app.extensions import db
from app.models import (
    Issue,
    IssueActivity,
    IssueAssignee,
    IssueLabel,
    IssueWatcher,
    Label,
    Membership,
    Project,
    User,
)
from app.models.base import new_id, utcnow
from app.models.work import CLOSED_STATES, PRIORITY_LABELS, STATE_LABELS, TODO, due_date_problem

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
PREVIEW_ROWS = 5
#: Bad rows a finished import lists (the total is always given).
BAD_ROWS_SHOWN = 500
RANK_STEP = 1024.0
MAX_TITLE = 255
MAX_DESCRIPTION = 50_000
MAX_ESTIMATE = 1000

IGNORE = "ignore"
#: What a CSV column can become, in the order the mapping menu shows them.
FIELDS = {
    IGNORE: "Ignore this column",
    "title": "Title",
    "description": "Description",
    "state": "State",
    "priority": "Priority",
    "assignees": "Assignees",
    "labels": "Labels",
    "due_date": "Due date",
    "estimate": "Estimate",
    "external_id": "ID (recognises re-imports)",
}
#: Header names (compared in lower case, ``_`` and ``-`` read as spaces) each field is guessed from.
HEADER_NAMES = {
    "title": {"title", "summary", "name", "subject", "issue", "issue title"},
    "description": {"description", "body", "details", "notes", "text"},
    "state": {"state", "status", "workflow state"},
    "priority": {"priority", "prio"},
    "assignees": {"assignee", "assignees", "assigned to", "owner", "owners"},
    "labels": {"label", "labels", "tag", "tags"},
    "due_date": {"due date", "due", "due on", "deadline"},
    "estimate": {"estimate", "estimation", "points", "story points"},
    "external_id": {"id", "key", "issue id", "issue key", "external id", "ref"},
}
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_LIST_SEPARATORS = re.compile(r"[,;]")


class UploadError(ValueError):
    """The uploaded file cannot be imported; the message says why (shown as a form error)."""


class MappingError(ValueError):
    """The chosen mapping cannot work (no title column, a field chosen twice)."""


class RowProblem(ValueError):
    """One row cannot be imported; the message gives every reason."""


# --- the upload ------------------------------------------------------------------------------


@dataclass
class Upload:
    """A stored upload as the preview and the job know it (kept beside the file as JSON)."""

    token: str
    filename: str
    delimiter: str
    header: list[str]
    rows: int
    preview: list[list[str]] = field(default_factory=list)


def upload_key(token: str) -> str:
    return tenant_key("imports", f"{token}.csv")


def _meta_key(token: str) -> str:
    return tenant_key("imports", f"{token}.json")


def records(stream: IO[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` for each non-blank record, the line being where it starts in the file."""
    reader = csv.reader(stream, delimiter=delimiter)
    last = 0
    for cells in reader:
        line, last = last + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield line, cells


def _sniff_delimiter(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _clean_filename(name: str | None) -> str:
    name = (name or "upload.csv").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return (re.sub(r"[\x00-\x1f]", "", name) or "upload.csv")[:100]


def store_upload(stream: IO[bytes], filename: str | None) -> Upload:
    """Check an uploaded CSV and store it under the organization's files; ``UploadError`` if unusable.

    Nothing is stored unless the whole file is UTF-8 CSV with a header and at least one row.
    """
    data = stream.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: split it into smaller files."
        )
    if not data.strip():
        raise UploadError("The file is empty.")
    if b"\x00" in data:
        raise UploadError("This is not a CSV file (it holds binary data). Export the sheet as CSV first.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(
            f"The file is not UTF-8 text (byte {exc.start + 1} is not). "
            "Save it as “CSV UTF-8” and upload it again."
        ) from exc
    delimiter = _sniff_delimiter(text)
    header, rows, preview = None, 0, []
    try:
        for _line, cells in records(io.StringIO(text, newline=""), delimiter):
            if header is None:
                header = [cell.strip() for cell in cells]
                continue
            rows += 1
            if len(preview) < PREVIEW_ROWS:
                preview.append(cells)
    except csv.Error as exc:
        raise UploadError(f"This is not a readable CSV file: {exc}.") from exc
    if header is None:
        raise UploadError("The file is empty.")
    if rows == 0:
        raise UploadError("The file has a header line but no rows to import.")
    upload = Upload(secrets.token_hex(16), _clean_filename(filename), delimiter, header, rows, preview)
    store = file_store()
    with store.open_write(upload_key(upload.token)) as out:
        out.write(data)
    with store.open_write(_meta_key(upload.token), "w") as out:
        json.dump(asdict(upload), out)
    return upload


def load_upload(token: str | None) -> Upload | None:
    """The organization's stored upload with this token, or None (unknown, malformed, or another's)."""
    if not token or not _TOKEN.match(token):
        return None
    store = file_store()
    key = _meta_key(token)
    if not store.exists(key) or not store.exists(upload_key(token)):
        return None
    with store.open_read(key, "r") as stream:
        return Upload(**json.load(stream))


def delete_upload(token: str) -> None:
    store = file_store()
    store.delete(upload_key(token))
    store.delete(_meta_key(token))


def read_rows(upload: Upload) -> Iterator[tuple[int, list[str]]]:
    """The stored file's data rows, streamed: ``(line in the file, cells)``."""
    with file_store().open_read(upload_key(upload.token), "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        rows = records(text, upload.delimiter)
        next(rows, None)  # the header
        yield from rows


# --- the mapping -----------------------------------------------------------------------------


def _header_name(name: str) -> str:
    return " ".join(re.sub(r"[_\-]", " ", name.lower()).split())


def guess_mapping(header: list[str]) -> list[str]:
    """A field for each column, from its name ("Summary" → title, "Status" → state); each field once."""
    taken, mapping = set(), []
    for name in header:
        guess = next(
            (f for f, names in HEADER_NAMES.items() if _header_name(name) in names and f not in taken),
            IGNORE,
        )
        if guess != IGNORE:
            taken.add(guess)
        mapping.append(guess)
    return mapping


def mapping_from_form(header: list[str], chosen: list[str | None]) -> list[str]:
    """The mapping a member chose, checked: known fields, a title, each field at most once."""
    mapping = [value if value in FIELDS else IGNORE for value in chosen]
    mapping += [IGNORE] * (len(header) - len(mapping))
    used = [f for f in mapping if f != IGNORE]
    twice = sorted({FIELDS[f] for f in used if used.count(f) > 1})
    if twice:
        raise MappingError(f"Each field can come from one column only: {', '.join(twice)} is chosen twice.")
    if "title" not in used:
        raise MappingError("Choose the column that holds the issues' titles.")
    return mapping[: len(header)]


# --- checking rows ---------------------------------------------------------------------------


@dataclass
class IssueRow:
    """A row that passed every check, with its values resolved to ids."""

    line: int
    import_key: str
    title: str
    description: str = ""
    state: str = TODO
    priority: int = 0
    assignee_ids: list[uuid.UUID] = field(default_factory=list)
    label_ids: list[uuid.UUID] = field(default_factory=list)
    due_date: date | None = None
    estimate: int | None = None


def _choice_key(value: str) -> str:
    return "_".join(re.sub(r"[_\-]", " ", value.lower()).split())


_STATES = {
    **{_choice_key(k): k for k in STATE_LABELS},
    **{_choice_key(v): k for k, v in STATE_LABELS.items()},
}
_PRIORITIES = {
    **{str(k): k for k in PRIORITY_LABELS},
    **{_choice_key(v): k for k, v in PRIORITY_LABELS.items()},
    "none": 0,
}
_STATE_NAMES = ", ".join(STATE_LABELS.values())
_PRIORITY_NAMES = ", ".join(PRIORITY_LABELS[k] for k in sorted(PRIORITY_LABELS, reverse=True))


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


class RowChecker:
    """Checks rows against a mapping and the organization's members and labels (loaded once)."""

    def __init__(self, mapping: list[str]):
        unknown = [f for f in mapping if f not in FIELDS]
        if unknown or "title" not in mapping:
            raise MappingError("The column mapping is not valid.")
        self.mapping = mapping
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

    def check(self, line: int, cells: list[str]) -> IssueRow:
        """The row's values, resolved; ``RowProblem`` naming every reason it cannot be imported."""
        problems = []
        extra = [c for c in cells[len(self.mapping) :] if c.strip()]
        if extra:
            problems.append(f"has {len(cells)} values but the header has {len(self.mapping)} columns")
        row = IssueRow(line=line, import_key=self.key_of(cells), title=self._value(cells, "title"))
        if not row.title:
            problems.append("the title is empty")
        elif len(row.title) > MAX_TITLE:
            problems.append(f"the title is longer than {MAX_TITLE} characters")
        elif invisible_text_problem(row.title):
            problems.append(
                "the title holds invisible formatting characters (such as a right-to-left override)"
            )
        row.description = self._value(cells, "description")
        if len(row.description) > MAX_DESCRIPTION:
            problems.append(f"the description is longer than {MAX_DESCRIPTION:,} characters")
        if has_control_characters(*cells):
            problems.append("a value holds a control character (such as a NUL byte)")
        if state := self._value(cells, "state"):
            row.state = _STATES.get(_choice_key(state))
            if row.state is None:
                problems.append(f"state '{_short(state)}' is not one of {_STATE_NAMES}")
        if priority := self._value(cells, "priority"):
            row.priority = _PRIORITIES.get(_choice_key(priority))
            if row.priority is None:
                problems.append(f"priority '{_short(priority)}' is not one of {_PRIORITY_NAMES} (or 0 to 4)")
        for name in _split_list(self._value(cells, "assignees")):
            user_id, problem = self._member(name)
            if problem:
                problems.append(problem)
            elif user_id not in row.assignee_ids:
                row.assignee_ids.append(user_id)
        for name in _split_list(self._value(cells, "labels")):
            label_id, problem = self._label(name)
            if problem:
                problems.append(problem)
            elif label_id not in row.label_ids:
                row.label_ids.append(label_id)
        if due := self._value(cells, "due_date"):
            try:
                row.due_date = date.fromisoformat(due)
            except ValueError:
                problems.append(f"due date '{_short(due)}' is not a date like 2026-12-31")
            else:
                if problem := due_date_problem(row.due_date):
                    problems.append(f"due date '{_short(due)}': {problem[0].lower()}{problem[1:]}")
        if estimate := self._value(cells, "estimate"):
            try:
                row.estimate = int(estimate)
            except ValueError:
                row.estimate = None
            if row.estimate is None or not 0 <= row.estimate <= MAX_ESTIMATE:
                problems.append(
                    f"estimate '{_short(estimate)}' is not a whole number from 0 to {MAX_ESTIMATE}"
                )
        if problems:
            raise RowProblem("; ".join(problems))
        return row


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in _LIST_SEPARATORS.split(value) if part.strip()]


# --- creating issues -------------------------------------------------------------------------


def create_issues(
    project_id: uuid.UUID, actor_id: uuid.UUID | None, rows: Iterable[IssueRow]
) -> tuple[int, int]:
    """Create an issue for each row whose import key the project does not have yet.

    Returns ``(created, duplicates)``. Flushes but does not commit: the caller commits the batch
    together with its progress. The project row is locked first, so concurrent imports into one
    project take turns and see each other's keys; its counter moves once for the whole batch
    (numbers stay gap-free: a rolled-back batch gives them all back).
    """
    rows = list(rows)
    if not rows:
        return 0, 0
    db.session.execute(select(Project.id).where(Project.id == project_id).with_for_update()).one()
    keys = {row.import_key for row in rows}
    existing = set(
        db.session.scalars(
            select(Issue.import_key).where(Issue.project_id == project_id, Issue.import_key.in_(keys))
        )
    )
    new = []
    for row in rows:
        if row.import_key not in existing:
            existing.add(row.import_key)
            new.append(row)
    if not new:
        return 0, len(rows)
    last = db.session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(issue_counter=Project.issue_counter + len(new))
        .returning(Project.issue_counter)
    ).scalar_one()
    ranks = dict(
        db.session.execute(
            select(Issue.state, func.max(Issue.rank))
            .where(Issue.project_id == project_id)
            .group_by(Issue.state)
        ).all()
    )
    now = utcnow()
    for number, row in enumerate(new, start=last - len(new) + 1):
        rank = (ranks.get(row.state) or 0.0) + RANK_STEP
        ranks[row.state] = rank
        issue_id = new_id()
        db.session.add(
            Issue(
                id=issue_id,
                project_id=project_id,
                number=number,
                title=row.title,
                description=row.description,
                state=row.state,
                priority=row.priority,
                due_date=row.due_date,
                estimate=row.estimate,
                created_by_id=actor_id,
                created_at=now,
                updated_at=now,
                closed_at=now if row.state in CLOSED_STATES else None,
                rank=rank,
                import_key=row.import_key,
            )
        )
        db.session.add(
            IssueActivity(
                issue_id=issue_id, actor_id=actor_id, field="created", new_value=row.title, created_at=now
            )
        )
        for user_id in row.assignee_ids:
            db.session.add(IssueAssignee(issue_id=issue_id, user_id=user_id))
            db.session.add(IssueWatcher(issue_id=issue_id, user_id=user_id))
        for label_id in row.label_ids:
            db.session.add(IssueLabel(issue_id=issue_id, label_id=label_id))
    db.session.flush()
    return len(new), len(rows) - len(new)
