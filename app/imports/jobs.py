"""The CSV import job: reads the stored upload row by row and creates issues a batch at a time.

Each batch of rows is committed together with the task's progress, a checkpoint (the last line
handled and the counts so far) and the batch's rows with problems in one transaction. A job run
again after its worker died resumes after the checkpoint; rows of a batch that never committed
are read again, and any issue already there (same import key) is skipped rather than created
twice.
"""

from __future__ import annotations

import csv
import uuid

from app.core.queue.queues import DEFAULT, LOW, Period, exponential_backoff, job, not_a_task_error
from app.core.queue.tracking import TaskError, TaskProgress, finished_result, tracked
from app.core.storage import file_store
from app.extensions import db
from app.imports import services as imports
from app.models import Project
from app.plans import quotas

#: Rows per transaction: one counter update, one key lookup and one flush each.
BATCH_ROWS = 500
#: What an import's result counts: rows read, issues created (some without a bad optional value),
#: rows already imported, rows rejected, and the values left out.
COUNTS = ("rows", "imported", "imported_with_warnings", "duplicates", "rejected", "warnings")
#: Uploads nobody imported (the preview was left) are deleted after this long.
STALE_UPLOAD_SECONDS = 7 * 24 * 3600


# 10,000 rows took 43 s on 2 busy cores (docs/performance.md); a retry resumes from the last batch.
@job(DEFAULT, timeout=1800, retry=exponential_backoff(3, first_seconds=10), transient=not_a_task_error)
def import_issues(
    task_id: str, project_id: str, token: str, mapping: list[str], rows_total: int, strict: bool = False
) -> dict:
    """Import the upload ``token`` into the project with ``mapping``; the result counts the rows.

    Rows with problems are recorded as ``ImportProblem`` rows of the task (rejected ones with
    their cells). ``strict`` rejects a row for a bad optional value instead of leaving it out.
    """
    done, result = finished_result(task_id)
    if done:
        return result
    with tracked(task_id) as task:
        project, upload, checker = _inputs(project_id, token, mapping, strict)
        tally = _resume(task.result, project.key, upload, strict)
        counts = tally["counts"]
        actor_id = task.created_by_id
        progress = TaskProgress(task, rows_total, noun="rows")
        batch: list[imports.IssueRow] = []
        rejected: list = []
        handled = 0

        def commit_batch(line: int) -> None:
            nonlocal handled
            try:
                created = imports.create_issues(project.id, actor_id, batch)
            except quotas.QuotaExceeded as exc:
                raise TaskError(
                    f"{exc} The import stopped at line {line:,}: {counts['imported']:,} issues were imported."
                ) from exc
            warned = [imports.warned_row(task.id, row) for row in created if row.warnings]
            db.session.add_all(rejected + warned)
            counts["imported"] += len(created)
            counts["imported_with_warnings"] += len(warned)
            counts["warnings"] += sum(len(row.warnings) for row in created)
            counts["duplicates"] += len(batch) - len(created)
            counts["rejected"] += len(rejected)
            counts["rows"] += handled
            tally["checkpoint_line"] = line
            batch.clear()
            rejected.clear()
            handled = 0
            # A new value (the JSON column sees only assignments), committed with the batch
            # by the progress report.
            task.result = {**tally, "counts": dict(counts)}
            progress(
                min(counts["rows"], rows_total),
                f"{counts['rows']:,} of {rows_total:,} rows: {counts['imported']:,} imported",
            )

        line = tally["checkpoint_line"]
        if line == 0:
            _room_for(rows_total)
        try:
            for line, cells in imports.read_rows(upload):
                if line <= tally["checkpoint_line"]:
                    continue
                handled += 1
                try:
                    batch.append(checker.check(line, cells))
                except imports.RowProblem as problem:
                    rejected.append(imports.rejected_row(task.id, line, cells, problem))
                if handled >= BATCH_ROWS:
                    commit_batch(line)
        except csv.Error as exc:
            raise TaskError(f"The file cannot be read after line {line}: {exc}.") from exc
        commit_batch(line)
        result = {key: value for key, value in tally.items() if key != "checkpoint_line"}
        result["counts"] = dict(counts)
        result["attention"] = _attention(counts)
        task.mark_finished(result, message=_summary(counts))
        db.session.commit()
    imports.delete_upload(token)
    return result


def _room_for(rows: int) -> None:
    """TaskError before anything is written when the file has more rows than the plan has room for
    (however the import was started: the page checks it too)."""
    try:
        quotas.check(None, "issues", adding=rows)
    except quotas.QuotaExceeded as exc:
        raise TaskError(f"The file has {rows:,} rows, so nothing was imported. {exc}") from exc


def _inputs(project_id: str, token: str, mapping: list[str], strict: bool):
    """The project, the upload and the row checker; ``TaskError`` when one of them is unusable."""
    project = Project.get_scoped(db.session, uuid.UUID(project_id))
    if project is None:
        raise TaskError("The project no longer exists; nothing was imported.")
    if project.archived:
        raise TaskError(f"{project.key} is archived: unarchive it to import issues into it.")
    upload = imports.load_upload(token)
    if upload is None:
        raise TaskError("The uploaded file is no longer available; upload it again.")
    try:
        checker = imports.RowChecker(mapping, upload.header, strict, project.id)
    except imports.MappingError as exc:
        raise TaskError(str(exc)) from exc
    return project, upload, checker


def _resume(checkpoint: dict | None, project_key: str, upload: imports.Upload, strict: bool) -> dict:
    """The counts so far: a fresh tally, or the one a previous run of this task committed."""
    tally = {
        "project_key": project_key,
        "file": upload.filename,
        "header": upload.header,
        "strict": strict,
        "counts": dict.fromkeys(COUNTS, 0),
        "checkpoint_line": 0,
    }
    if checkpoint and "checkpoint_line" in checkpoint:
        tally["checkpoint_line"] = checkpoint["checkpoint_line"]
        tally["counts"].update(checkpoint.get("counts", {}))
    return tally


def _plural(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _attention(counts: dict) -> str:
    """What the task's status adds to "Finished" when rows need a look: "with 12 rejected rows"."""
    parts = []
    if counts["rejected"]:
        parts.append(f"{_plural(counts['rejected'], 'rejected row')}")
    if counts["imported_with_warnings"]:
        parts.append(f"{_plural(counts['imported_with_warnings'], 'row')} imported with warnings")
    return "with " + " and ".join(parts) if parts else ""


def _summary(counts: dict) -> str:
    parts = [f"Imported {counts['imported']:,} of {counts['rows']:,} rows"]
    if counts["imported_with_warnings"]:
        parts.append(f"{counts['imported_with_warnings']:,} with warnings")
    if counts["duplicates"]:
        parts.append(f"{counts['duplicates']:,} already imported")
    if counts["rejected"]:
        parts.append(f"{counts['rejected']:,} rejected")
    return ", ".join(parts) + "."


@job(LOW, timeout=600, period=Period("purge-stale-imports", every_seconds=24 * 3600))
def purge_stale_uploads() -> int:
    """Delete uploads (of every organization) left at the preview for a week; how many files."""
    store = file_store()
    tenants = store.root / "t"
    if not tenants.is_dir():
        return 0
    deleted = 0
    for tenant in tenants.iterdir():
        if (tenant / "imports").is_dir():
            deleted += store.delete_older_than(f"t/{tenant.name}/imports", STALE_UPLOAD_SECONDS)
    return deleted
