"""The CSV import job: reads the stored upload row by row and creates issues a batch at a time.

Each batch of rows is committed together with the task's progress and a checkpoint (the last
line handled, the counts and the bad rows so far) in one transaction. A job run again after its
worker died resumes after the checkpoint; rows of a batch that never committed are read again,
and any issue already there (same import key) is skipped rather than created twice.
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

#: Rows per transaction: one counter update, one key lookup and one flush each.
BATCH_ROWS = 500
#: Uploads nobody imported (the preview was left) are deleted after this long.
STALE_UPLOAD_SECONDS = 7 * 24 * 3600


# 10,000 rows took 43 s on 2 busy cores (docs/performance.md); a retry resumes from the last batch.
@job(DEFAULT, timeout=1800, retry=exponential_backoff(3, first_seconds=10), transient=not_a_task_error)
def import_issues(task_id: str, project_id: str, token: str, mapping: list[str], rows_total: int) -> dict:
    """Import the upload ``token`` into the project with ``mapping``; the result lists bad rows."""
    done, result = finished_result(task_id)
    if done:
        return result
    with tracked(task_id) as task:
        project = Project.get_scoped(db.session, uuid.UUID(project_id))
        if project is None:
            raise TaskError("The project no longer exists; nothing was imported.")
        if project.archived:
            raise TaskError(f"{project.key} is archived: unarchive it to import issues into it.")
        upload = imports.load_upload(token)
        if upload is None:
            raise TaskError("The uploaded file is no longer available; upload it again.")
        try:
            checker = imports.RowChecker(mapping)
        except imports.MappingError as exc:
            raise TaskError(str(exc)) from exc
        tally = _resume(task.result, project.key, upload)
        actor_id = task.created_by_id
        progress = TaskProgress(task, rows_total, noun="rows")
        batch: list[imports.IssueRow] = []
        handled = 0

        def commit_batch(line: int) -> None:
            nonlocal handled
            created, duplicates = imports.create_issues(project.id, actor_id, batch)
            tally["imported"] += created
            tally["duplicates"] += duplicates
            tally["rows"] += handled
            tally["checkpoint_line"] = line
            batch.clear()
            handled = 0
            # A new value (the JSON column sees only assignments), committed with the batch
            # by the progress report.
            task.result = {**tally, "bad_rows": list(tally["bad_rows"])}
            progress(
                min(tally["rows"], rows_total),
                f"{tally['rows']:,} of {rows_total:,} rows: {tally['imported']:,} imported",
            )

        line = tally["checkpoint_line"]
        try:
            for line, cells in imports.read_rows(upload):
                if line <= tally["checkpoint_line"]:
                    continue
                handled += 1
                try:
                    batch.append(checker.check(line, cells))
                except imports.RowProblem as problem:
                    tally["bad_total"] += 1
                    if len(tally["bad_rows"]) < imports.BAD_ROWS_SHOWN:
                        tally["bad_rows"].append([line, str(problem)])
                if handled >= BATCH_ROWS:
                    commit_batch(line)
        except csv.Error as exc:
            raise TaskError(f"The file cannot be read after line {line}: {exc}.") from exc
        commit_batch(line)
        result = {key: value for key, value in tally.items() if key != "checkpoint_line"}
        task.mark_finished(result, message=_summary(result))
        db.session.commit()
    imports.delete_upload(token)
    return result


def _resume(checkpoint: dict | None, project_key: str, upload: imports.Upload) -> dict:
    """The counts so far: a fresh tally, or the one a previous run of this task committed."""
    tally = {
        "project_key": project_key,
        "file": upload.filename,
        "rows": 0,
        "imported": 0,
        "duplicates": 0,
        "bad_total": 0,
        "bad_rows": [],
        "checkpoint_line": 0,
    }
    if checkpoint and "checkpoint_line" in checkpoint:
        tally.update({key: checkpoint[key] for key in tally if key in checkpoint})
        tally["bad_rows"] = list(tally["bad_rows"])
    return tally


def _summary(result: dict) -> str:
    parts = [f"Imported {result['imported']:,} of {result['rows']:,} rows"]
    if result["duplicates"]:
        parts.append(f"{result['duplicates']:,} already imported")
    if result["bad_total"]:
        parts.append(f"{result['bad_total']:,} with problems")
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
