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

from sqlalchemy import Date, insert, select

from app.core import audit
from app.core.permissions import ROLES
from app.core.tenancy import tenant_context
from app.exports.tables import FORMAT, FORMAT_VERSION
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
    Organization,
    Project,
    SavedView,
    User,
)
from app.models.base import UTCDateTime, new_id
from app.orgs.services import OrgError, create_organization, slug_problem

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


def _parse(model, name: str, value):
    if value is None:
        return None
    column_type = model.__table__.c[name].type
    if isinstance(column_type, UTCDateTime):
        return datetime.fromisoformat(value)
    if isinstance(column_type, Date):
        return date.fromisoformat(value)
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


def _rows(archive: zipfile.ZipFile, name: str) -> Iterator[dict]:
    try:
        entry = archive.open(f"{name}.jsonl")
    except KeyError as exc:
        raise ImportProblem(f"The export has no {name}.jsonl; it is incomplete.") from exc
    with entry:
        for number, line in enumerate(entry, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
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
    if document.get("format_version") != FORMAT_VERSION:
        raise ImportProblem(
            f"This export has format version {document.get('format_version')!r}; "
            f"this Worklane imports version {FORMAT_VERSION}."
        )
    return document


def import_export(
    source: str | IO[bytes], name: str, owner_email: str, slug: str | None = None
) -> ImportReport:
    """Create a new organization ``name`` owned by ``owner_email`` from an export zip; commits.

    Raises ImportProblem (nothing stored) for a file that is not an export, an unknown
    owner, or a slug that cannot be used.
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
            report = ImportReport(organization.id, organization.slug)
            with tenant_context(organization.id):
                _import_rows(archive, manifest, organization, owner, report)
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

    tenant = organization.id
    people = _People(report)
    people.ids[owner.email.lower()] = owner.id
    for member in manifest.get("members", []):
        email = (member.get("email") or "").lower()
        if not email or email == owner.email.lower():
            continue
        user_id = people.id_of(email, "membership")
        if user_id is not None:
            role = member.get("role") if member.get("role") in ROLES else "member"
            joined = _parse(Membership, "created_at", member.get("joined_at"))
            db.session.add(
                Membership(user_id=user_id, role=role, **({"created_at": joined} if joined else {}))
            )
            report.members_added.append(email)
    db.session.flush()

    projects: dict[str, uuid.UUID] = {}
    old_ids: dict[str, str] = {}  # old project and label ids -> new ones (saved views' filters)
    batch = _Batches(Project, tenant)
    for row in _rows(archive, "projects"):
        projects[row["key"]] = new_id()
        old_ids[row["id"]] = str(projects[row["key"]])
        batch.add(
            id=projects[row["key"]],
            key=row["key"],
            name=row["name"],
            description=row["description"],
            issue_counter=row["issue_counter"],
            archived_at=_parse(Project, "archived_at", row["archived_at"]),
            created_by_id=people.id_of(row["created_by"], "projects created"),
            created_at=_parse(Project, "created_at", row["created_at"]),
            updated_at=_parse(Project, "updated_at", row["updated_at"]),
        )
    batch.flush()
    report.rows["projects"] = batch.count

    labels: dict[str, uuid.UUID] = {}
    batch = _Batches(Label, tenant)
    for row in _rows(archive, "labels"):
        labels[row["name"]] = new_id()
        old_ids[row["id"]] = str(labels[row["name"]])
        batch.add(
            id=labels[row["name"]],
            name=row["name"],
            color=row["color"],
            created_at=_parse(Label, "created_at", row["created_at"]),
        )
    batch.flush()
    report.rows["labels"] = batch.count

    issues: dict[str, uuid.UUID] = {}
    batch = _Batches(Issue, tenant)
    for row in _rows(archive, "issues"):
        if row["project"] not in projects:
            raise ImportProblem(f"Issue {row['issue']} names a project not in the export.")
        issues[row["issue"]] = new_id()
        values = {
            column: _parse(Issue, column, row[column])
            for column in (
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
            )
        }
        batch.add(
            id=issues[row["issue"]],
            project_id=projects[row["project"]],
            created_by_id=people.id_of(row["created_by"], "issues created"),
            **values,
        )
    batch.flush()
    report.rows["issues"] = batch.count

    def issue_of(row) -> uuid.UUID:
        try:
            return issues[row["issue"]]
        except KeyError as exc:
            raise ImportProblem(f"A row refers to issue {row['issue']}, which is not in the export.") from exc

    for table, model, use in (
        ("issue_assignees", IssueAssignee, "assignments skipped"),
        ("issue_watchers", IssueWatcher, "watches skipped"),
    ):
        batch = _Batches(model, tenant)
        for row in _rows(archive, table):
            user_id = people.id_of(row["user"], use)
            if user_id is not None:
                batch.add(issue_id=issue_of(row), user_id=user_id)
        batch.flush()
        report.rows[table] = batch.count

    batch = _Batches(IssueLabel, tenant)
    for row in _rows(archive, "issue_labels"):
        batch.add(issue_id=issue_of(row), label_id=labels[row["label"]])
    batch.flush()
    report.rows["issue_labels"] = batch.count

    batch = _Batches(Comment, tenant)
    for row in _rows(archive, "comments"):
        batch.add(
            id=new_id(),
            issue_id=issue_of(row),
            author_id=people.id_of(row["author"], "comments kept without author"),
            body=row["body"],
            created_at=_parse(Comment, "created_at", row["created_at"]),
            updated_at=_parse(Comment, "updated_at", row["updated_at"]),
        )
    batch.flush()
    report.rows["comments"] = batch.count

    batch = _Batches(IssueActivity, tenant)
    for row in _rows(archive, "issue_activities"):
        batch.add(
            id=new_id(),
            issue_id=issue_of(row),
            actor_id=people.id_of(row["actor"], "history kept without actor"),
            field=row["field"],
            old_value=row["old_value"],
            new_value=row["new_value"],
            created_at=_parse(IssueActivity, "created_at", row["created_at"]),
        )
    batch.flush()
    report.rows["issue_activities"] = batch.count

    batch = _Batches(SavedView, tenant)
    for row in _rows(archive, "saved_views"):
        user_id = people.id_of(row["user"], "saved views skipped")
        if user_id is None:
            continue
        filters = {
            key: old_ids.get(value, value) if isinstance(value, str) else value
            for key, value in (row["filters"] or {}).items()
        }
        batch.add(
            id=new_id(),
            user_id=user_id,
            project_id=projects.get(row["project"]) if row["project"] else None,
            name=row["name"],
            filters=filters,
            created_at=_parse(SavedView, "created_at", row["created_at"]),
        )
    batch.flush()
    report.rows["saved_views"] = batch.count

    batch = _Batches(Notification, tenant)
    for row in _rows(archive, "notifications"):
        user_id = people.id_of(row["user"], "notifications skipped")
        if user_id is None:
            continue
        batch.add(
            id=new_id(),
            user_id=user_id,
            issue_id=issue_of(row),
            actor_id=people.id_of(row["actor"], "notifications kept without actor"),
            kind=row["kind"],
            excerpt=row["excerpt"],
            created_at=_parse(Notification, "created_at", row["created_at"]),
            read_at=_parse(Notification, "read_at", row["read_at"]),
            emailed_at=_parse(Notification, "emailed_at", row["emailed_at"]),
        )
    batch.flush()
    report.rows["notifications"] = batch.count
