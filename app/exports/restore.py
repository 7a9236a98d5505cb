"""Importing an export zip into a NEW organization (restore, or moving an organization).

Everything gets new ids in the new tenant; issues keep their keys and numbers. People are
matched by email to existing accounts and no account is ever created:

- a member whose email has an account joins with the exported role (the importing owner is
  an owner whatever the export says);
- content by someone without an account (issues, comments, history) is kept with no author;
- their assignments, watches, saved views and notifications are skipped;

and the report lists those email addresses with what was skipped. The import is one
transaction: it succeeds whole or leaves nothing behind. Rows are read from the zip entry
by entry and inserted in batches; only the maps from old keys to new ids (projects, labels,
issues, people) are held in memory.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO

from sqlalchemy import Boolean, Date, Integer, String, insert, select

from app.core import audit
from app.core.permissions import ROLES
from app.core.tenancy import tenant_context
from app.exports.readback import ExportTable
from app.exports.tables import FORMAT, FORMAT_VERSION, FORMAT_VERSIONS, TABLES
from app.extensions import db
from app.models import Issue, Membership, Organization, User, WorkflowState
from app.models.base import UTCDateTime, new_id
from app.models.work import rendered_columns
from app.orgs.services import OrgError, create_organization, slug_problem
from app.plans import quotas

BATCH_ROWS = 1000


class ImportProblem(ValueError):
    """The file cannot be imported; the message says why (nothing was stored)."""


@dataclass
class ImportReport:
    organization_id: uuid.UUID
    slug: str
    rows: dict[str, int] = field(default_factory=dict)
    members_added: list[str] = field(default_factory=list)
    #: Emails without an account here -> what of theirs was skipped or kept without them.
    unknown_people: dict[str, Counter] = field(default_factory=dict)


def _parse(model, name: str, value, where: str):
    """A value from the export as its column stores it; ImportProblem if it cannot be one."""
    column = model.__table__.c[name]
    if value is None:
        if not column.nullable:
            raise ImportProblem(f"{where}: {name} is empty.")
        return None
    try:
        if isinstance(column.type, UTCDateTime):
            return datetime.fromisoformat(value)
        if isinstance(column.type, Date):
            return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ImportProblem(f"{where}: {name} {value!r} is not a date in ISO 8601.") from exc
    if isinstance(column.type, Boolean) and not isinstance(value, bool):
        raise ImportProblem(f"{where}: {name} {value!r} is not true or false.")
    if isinstance(column.type, Integer) and (not isinstance(value, int) or isinstance(value, bool)):
        raise ImportProblem(f"{where}: {name} {value!r} is not a whole number.")
    if isinstance(column.type, String):
        if not isinstance(value, str):
            raise ImportProblem(f"{where}: {name} {value!r} is not text.")
        if column.type.length and len(value) > column.type.length:
            raise ImportProblem(f"{where}: {name} is longer than {column.type.length} characters.")
    if (choices := column.info.get("choices")) and value not in choices:
        raise ImportProblem(f"{where}: {name} {value!r} is not one of {', '.join(choices)}.")
    return value


class _People:
    """Emails to accounts, looked up once each; remembers who was not found and why it mattered."""

    def __init__(self, report: ImportReport):
        self.report = report
        self.ids: dict[str, uuid.UUID | None] = {}

    def id_of(self, email: str | None, use: str) -> uuid.UUID | None:
        if not email:
            return None
        key = email.lower()
        if key not in self.ids:
            self.ids[key] = db.session.scalar(select(User.id).where(User.email == key))
        found = self.ids[key]
        if found is None:
            self.report.unknown_people.setdefault(key, Counter())[use] += 1
        return found


def _rows(archive: zipfile.ZipFile, name: str) -> Iterator[tuple[int, object]]:
    """(line number, row) for each row of a table in the export."""
    try:
        entry = archive.open(f"{name}.jsonl")
    except KeyError as exc:
        raise ImportProblem(f"The export has no {name}.jsonl; it is incomplete.") from exc
    with entry:
        for number, line in enumerate(entry, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except ValueError as exc:
                    raise ImportProblem(f"{name}.jsonl line {number} is not valid JSON.") from exc


class _Batches:
    """Inserts rows of one model in batches of ``BATCH_ROWS``."""

    def __init__(self, model, tenant_id):
        self.model, self.tenant_id, self.pending, self.count = model, tenant_id, [], 0

    def add(self, **values) -> None:
        self.pending.append({"tenant_id": self.tenant_id, **values})
        if len(self.pending) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            db.session.execute(insert(self.model), self.pending)
            self.count += len(self.pending)
            self.pending = []


def read_manifest(archive: zipfile.ZipFile) -> dict:
    try:
        document = json.loads(archive.read("organization.json"))
    except KeyError as exc:
        raise ImportProblem("This is not a Worklane export: it has no organization.json.") from exc
    except ValueError as exc:
        raise ImportProblem("organization.json is not valid JSON.") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImportProblem("This is not a Worklane export.")
    if document.get("format_version") not in FORMAT_VERSIONS:
        raise ImportProblem(
            f"This export has format version {document.get('format_version')!r}; "
            f"this Worklane imports version {FORMAT_VERSION}."
        )
    return document


def import_export(
    source: str | IO[bytes], name: str, owner_email: str, slug: str | None = None, plan: str | None = None
) -> ImportReport:
    """Create a new organization ``name`` owned by ``owner_email`` from an export zip; commits.

    The organization is on ``plan`` (default: the ``DEFAULT_PLAN`` setting). Raises ImportProblem
    (nothing stored) for a file that is not an export, an unknown owner, a slug that cannot be
    used, or more members, projects or issues than the plan includes.
    """
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportProblem("The file is not a zip archive.") from exc
    with archive:
        manifest = read_manifest(archive)
        owner = db.session.scalar(select(User).where(User.email == owner_email.strip().lower()))
        if owner is None:
            raise ImportProblem(f"No account has the email {owner_email}; the owner must have one.")
        if not name.strip():
            raise ImportProblem("Give the new organization a name.")
        if slug is not None and (problem := slug_problem(slug)):
            raise ImportProblem(problem)
        try:
            organization = create_organization(owner, name, slug)
            if plan is not None:
                organization.plan = plan
            report = ImportReport(organization.id, organization.slug)
            with tenant_context(organization.id):
                _import_rows(archive, manifest, organization, owner, report)
                _check_plan(organization)
                audit.record(
                    "organization.imported",
                    target=organization,
                    actor=owner,
                    source=manifest.get("organization", {}).get("slug"),
                    rows=sum(report.rows.values()),
                    unknown_people=len(report.unknown_people) or None,
                )
                db.session.flush()
            db.session.commit()
        except OrgError as exc:
            db.session.rollback()
            raise ImportProblem(str(exc)) from exc
        except Exception:
            db.session.rollback()
            raise
    return report


def _import_rows(
    archive, manifest: dict, organization: Organization, owner: User, report: ImportReport
) -> None:
    people = _People(report)
    people.ids[owner.email.lower()] = owner.id
    _add_members(manifest, owner, people, report)
    #: Per table: its rows' keys in the export -> their new ids.
    new_ids: dict[str, dict] = {}
    #: Old ids of projects and labels -> new ones (for the ids inside saved views' filters).
    old_ids: dict[str, str] = {}
    #: (project id, key) of each state restored: what an issue's state must be.
    states: set[tuple[uuid.UUID, str]] = set()
    for table in TABLES:
        reading = table.read_back
        keys = new_ids.setdefault(table.name, {})
        batch = _Batches(table.model, organization.id)
        if manifest["format_version"] < reading.since_version:
            for values in reading.missing_rows(list(new_ids["projects"].values())):
                states.add((values["project_id"], values["key"]))
                batch.add(id=new_id(), **values)
            batch.flush()
            report.rows[table.name] = batch.count
            continue
        for number, row in _rows(archive, table.name):
            where = f"{table.name}.jsonl line {number}"
            values = _read_row(table, row, where, people, new_ids)
            if values is None:
                continue
            if reading.new_id:
                values["id"] = new_id()
            if reading.key is not None:
                if not isinstance(row[reading.key], str):
                    raise ImportProblem(f"{where}: {reading.key} {row[reading.key]!r} is not text.")
                if row[reading.key] in keys:
                    raise ImportProblem(f"{where}: {row[reading.key]} is in the export twice.")
                keys[row[reading.key]] = values["id"]
                if reading.ids_in_documents and "id" in row:
                    old_ids[str(row["id"])] = str(values["id"])
            if table.model is WorkflowState:
                states.add((values["project_id"], values["key"]))
            elif table.model is Issue and (values["project_id"], values["state"]) not in states:
                raise ImportProblem(f"{where}: state {values['state']!r} is not one of its project's states.")
            for column in reading.documents:
                values[column] = _with_new_ids(values[column], old_ids, where)
            values.update(rendered_columns(table.model, values))
            batch.add(**values)
        batch.flush()
        report.rows[table.name] = batch.count


def _check_plan(organization: Organization) -> None:
    """ImportProblem when the restored organization holds more than its plan includes."""
    for name in ("members", "projects", "issues"):
        try:
            quotas.check(organization, name, adding=0)
        except quotas.QuotaExceeded as exc:
            raise ImportProblem(
                f"The export holds {exc.used:,} {exc.limit.nouns}; the {exc.plan.label} plan includes "
                f"{exc.allowed:,}. Choose a larger plan (--plan)."
            ) from exc


def _add_members(manifest: dict, owner: User, people: _People, report: ImportReport) -> None:
    for member in manifest.get("members", []):
        email = (member.get("email") or "").lower()
        if not email or email == owner.email.lower():
            continue
        user_id = people.id_of(email, "membership")
        if user_id is not None:
            role = member.get("role") if member.get("role") in ROLES else "member"
            joined = member.get("joined_at")
            joined = _parse(Membership, "created_at", joined, "organization.json") if joined else None
            db.session.add(
                Membership(user_id=user_id, role=role, **({"created_at": joined} if joined else {}))
            )
            report.members_added.append(email)
    db.session.flush()


def _read_row(table: ExportTable, row, where: str, people: _People, new_ids: dict) -> dict | None:
    """A row's values for the new organization, or None for a row skipped (its person has no
    account here); raises ImportProblem for a row that cannot be stored."""
    reading = table.read_back
    if not isinstance(row, dict):
        raise ImportProblem(f"{where} is not an object.")
    fields = (
        *([reading.key] if reading.key else []),
        *reading.columns,
        *(ref.field for ref in reading.references),
        *(person.field for person in reading.people),
    )
    if missing := [name for name in fields if name not in row]:
        raise ImportProblem(f"{where} has no {', '.join(missing)}.")
    values = {}
    for person in sorted(reading.people, key=lambda person: not person.required):
        values[person.column] = people.id_of(row[person.field], person.use)
        if person.required and values[person.column] is None:
            return None
    for ref in reading.references:
        if ref.optional and not row[ref.field]:
            values[ref.column] = None
        elif isinstance(row[ref.field], str) and (found := new_ids[ref.table].get(row[ref.field])):
            values[ref.column] = found
        else:
            raise ImportProblem(
                f"{where} refers to {ref.field} {row[ref.field]}, which is not in the export."
            )
    for column in reading.columns:
        if column in reading.documents:
            values[column] = row[column]  # JSON as it is; old ids rewritten once the row has its id
        else:
            values[column] = _parse(table.model, column, row[column], where)
    for column, default in reading.added_later:
        values[column] = _parse(table.model, column, row[column], where) if column in row else default
    if reading.problem and (problem := reading.problem(values)):
        raise ImportProblem(f"{where}: {problem}")
    return values


def _with_new_ids(document, old_ids: dict[str, str], where: str) -> dict:
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ImportProblem(f"{where} holds a document that is not an object.")
    return {key: _new_id(value, old_ids) for key, value in document.items()}


def _new_id(value, old_ids: dict[str, str]):
    """A document's value with old ids rewritten: a text, or each text of a list (a filter's values)."""
    if isinstance(value, list):
        return [old_ids.get(v, v) if isinstance(v, str) else v for v in value]
    return old_ids.get(value, value) if isinstance(value, str) else value
