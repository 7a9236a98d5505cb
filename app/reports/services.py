"""Reports: which snapshot a page shows, starting its computation, and the charts' tables.

The page never computes a report. It reads the scope's snapshot and compares its
``data_version`` with the current one (the tenant's ``issues`` and ``members`` cache versions
and the week the window ends in). When they differ it starts the computation as an
organization task whose id is derived from the scope, the version and the attempt, so any
number of page loads queue it once; the page polls until the fresh snapshot is stored.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.core import cache
from app.core.security import spreadsheet_safe
from app.core.tenancy import require_tenant
from app.extensions import db
from app.models import Project, ReportSnapshot, Task
from app.models.base import utcnow
from app.reports.queries import week_monday
from app.tasks.services import QueueUnavailable, start_task

KIND = "report"
JOB = "app.reports.jobs.compute_reports"
#: A failed computation may be tried again this many times per data version ("Try again").
MAX_ATTEMPTS = 5
_TASK_NAMESPACE = uuid.UUID("0b5e7c1e-6a43-4f57-9d0c-2f8f3c1a7e15")


@dataclass
class ReportState:
    """What a report page shows: the latest snapshot, whether it is current, the computation."""

    snapshot: ReportSnapshot | None
    fresh: bool
    task: Task | None
    attempts_left: bool = False

    @property
    def failed(self) -> bool:
        return not self.fresh and self.task is not None and self.task.status == Task.FAILED


def current_data_version(today: date | None = None) -> tuple[str, date]:
    """(version, Monday of the window's last week): any issue or member change moves it."""
    week_start = week_monday(today or utcnow().date())
    issues, members = cache.versions("issues", "members")
    return f"i{issues}.m{members}@{week_start.isoformat()}", week_start


def latest_snapshot(project: Project | None) -> ReportSnapshot | None:
    scope = ReportSnapshot.scope_for(project.id if project else None)
    return db.session.scalar(select(ReportSnapshot).where(ReportSnapshot.scope == scope))


def _task_id(scope: str, version: str, attempt: int) -> uuid.UUID:
    return uuid.uuid5(_TASK_NAMESPACE, f"{require_tenant()}|{scope}|{version}|{attempt}")


def _latest_attempt(scope: str, version: str) -> tuple[int, Task | None]:
    ids = [_task_id(scope, version, attempt) for attempt in range(MAX_ATTEMPTS)]
    found = {task.id: task for task in db.session.scalars(select(Task).where(Task.id.in_(ids)))}
    for attempt in reversed(range(MAX_ATTEMPTS)):
        if ids[attempt] in found:
            return attempt, found[ids[attempt]]
    return -1, None


def _start(project: Project | None, scope: str, version: str, week_start: date, attempt: int) -> Task:
    task_id = _task_id(scope, version, attempt)
    name = f"{project.name} ({project.key})" if project else "the organization"
    try:
        return start_task(
            KIND,
            JOB,
            str(project.id) if project else None,
            week_start.isoformat(),
            version,
            description=f"Reports for {name}",
            task_id=task_id,
        )
    except IntegrityError:
        # Another request started the same computation a moment ago.
        db.session.rollback()
        return Task.get_scoped(db.session, task_id)
    except QueueUnavailable as exc:
        return exc.task  # recorded as failed, with a message saying so


def report_state(project: Project | None, retry: bool = False) -> ReportState:
    """The scope's snapshot; when it is not current, the computation that brings it up to date.

    Starts that computation when none was started for the current data (``retry``: start the
    next attempt after a failed one).
    """
    version, week_start = current_data_version()
    snapshot = latest_snapshot(project)
    if snapshot is not None and snapshot.data_version == version:
        return ReportState(snapshot, True, None)
    scope = ReportSnapshot.scope_for(project.id if project else None)
    attempt, task = _latest_attempt(scope, version)
    # A task that finished without leaving a current snapshot (a slower computation of older
    # data stored its snapshot after it) is followed by the next attempt, as is a failed
    # one when the member asks to try again.
    again = task is not None and (task.status == Task.FINISHED or (retry and task.status == Task.FAILED))
    if task is None or (again and attempt + 1 < MAX_ATTEMPTS):
        attempt += 1
        task = _start(project, scope, version, week_start, attempt)
    return ReportState(snapshot, False, task, attempts_left=attempt + 1 < MAX_ATTEMPTS)


def store_snapshot(project_id, data_version: str, computed_at: datetime, data: dict) -> ReportSnapshot:
    """Replace the scope's snapshot, unless a computation that read newer data stored one already."""
    scope = ReportSnapshot.scope_for(project_id)
    for _ in range(2):
        snapshot = db.session.scalar(select(ReportSnapshot).where(ReportSnapshot.scope == scope))
        if snapshot is not None:
            if snapshot.computed_at <= computed_at:
                snapshot.data_version, snapshot.computed_at, snapshot.data = data_version, computed_at, data
            db.session.flush()
            return snapshot
        try:
            with db.session.begin_nested():
                snapshot = ReportSnapshot(
                    scope=scope,
                    project_id=project_id,
                    data_version=data_version,
                    computed_at=computed_at,
                    data=data,
                )
                db.session.add(snapshot)
            return snapshot
        except IntegrityError:
            continue  # stored meanwhile by a concurrent computation: replace it
    raise RuntimeError("could not store the report snapshot")


# --- the charts' numbers as tables (the page's tables and the CSV downloads) ----------------


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[tuple]


def _throughput(data) -> Table:
    return Table(
        ("Week", "Week starting", "Issues done"),
        [(w["week"], w["start"], w["done"]) for w in data["throughput"]],
    )


def _cycle_time(data) -> Table:
    return Table(("Cycle time", "Issues"), [(b["label"], b["count"]) for b in data["cycle_time"]["buckets"]])


def _burnup(data) -> Table:
    return Table(
        ("Week", "Week starting", "Created (total)", "Done (total)"),
        [(w["week"], w["start"], w["created"], w["done"]) for w in data["burnup"]],
    )


def _by_state(data) -> Table:
    return Table(("State", "Open issues"), [(s["label"], s["count"]) for s in data["open_by_state"]])


def _by_assignee(data) -> Table:
    return Table(("Assignee", "Open issues"), [(a["name"], a["count"]) for a in data["open_by_assignee"]])


#: Chart name (as in ``…/reports/<chart>.csv``) -> its table.
TABLES = {
    "throughput": _throughput,
    "cycle-time": _cycle_time,
    "burn-up": _burnup,
    "open-by-state": _by_state,
    "open-by-assignee": _by_assignee,
}


def table_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([spreadsheet_safe(c) for c in table.columns])
    for row in table.rows:
        writer.writerow([spreadsheet_safe(value) for value in row])
    return out.getvalue()
