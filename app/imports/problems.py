"""The rows of an import that had problems: written by the job with each batch, read a page at a
time on the task's page, and the rejected ones downloaded as CSV to be fixed and imported again."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from app.extensions import db
from app.imports.rows import IssueRow, RowChecker, RowProblem
from app.imports.uploads import Upload, read_rows
from app.models import ImportProblem

#: Rows with problems a page of the task's result lists.
PROBLEMS_PER_PAGE = 100
#: The column the rejected rows' file adds after the original ones.
REASONS_COLUMN = "Import problems"


def rejected_row(task_id: uuid.UUID, line: int, cells: list[str], problem: RowProblem) -> ImportProblem:
    """The record of a rejected row: its original cells and every reason."""
    return ImportProblem(
        task_id=task_id,
        line=line,
        rejected=True,
        cells=list(cells),
        problems=[p.as_json() for p in problem.problems],
    )


def warned_row(task_id: uuid.UUID, row: IssueRow) -> ImportProblem:
    """The record of a row imported without some of its values: which ones and why."""
    return ImportProblem(
        task_id=task_id, line=row.line, rejected=False, problems=[p.as_json() for p in row.warnings]
    )


@dataclass
class ProblemPage:
    """One page of an import's rows with problems, in file order."""

    number: int
    pages: int
    total: int
    rows: list[ImportProblem]


def problem_page(task_id: uuid.UUID, page: int | str | None) -> ProblemPage:
    """Page ``page`` (from 1; anything else is the first, past the end the last) of the task's problems."""
    total = db.session.scalar(
        select(func.count()).select_from(ImportProblem).where(ImportProblem.task_id == task_id)
    )
    pages = max(1, -(-total // PROBLEMS_PER_PAGE))
    try:
        number = min(max(1, int(page or 1)), pages)
    except ValueError:
        number = 1
    rows = db.session.scalars(
        select(ImportProblem)
        .where(ImportProblem.task_id == task_id)
        .order_by(ImportProblem.line)
        .offset((number - 1) * PROBLEMS_PER_PAGE)
        .limit(PROBLEMS_PER_PAGE)
    ).all()
    return ProblemPage(number, pages, total, list(rows))


def rejected_rows_csv(task_id: uuid.UUID, header: list[str]) -> str:
    """The rejected rows as CSV: the file's header and cells, then a column with the reasons.

    The values are written as they were in the uploaded file, so the file can be fixed and
    imported again; its size is bounded by the upload's (10 MB) and the reasons.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*header, REASONS_COLUMN])
    rows = db.session.scalars(
        select(ImportProblem)
        .where(ImportProblem.task_id == task_id, ImportProblem.rejected.is_(True))
        .order_by(ImportProblem.line)
        .execution_options(yield_per=500)
    )
    for row in rows:
        cells = list(row.cells or [])
        cells += [""] * (len(header) - len(cells))
        reasons = "; ".join(reason for _, _, reason in row.problems)
        writer.writerow([*cells[: len(header)], reasons, *cells[len(header) :]])
    return out.getvalue()


@dataclass
class Outcome:
    """What importing a file would do: rows imported (some with warnings), rows rejected."""

    imported: int = 0
    with_warnings: int = 0
    rejected: int = 0


def count_outcomes(upload: Upload, mapping: list[str], strict: bool, project_id=None) -> Outcome:
    """Check every row of the upload as the import will (rows already imported are not told apart)."""
    checker = RowChecker(mapping, upload.header, strict, project_id)
    outcome = Outcome()
    for line, cells in read_rows(upload):
        try:
            row = checker.check(line, cells)
        except RowProblem:
            outcome.rejected += 1
        else:
            outcome.imported += 1
            outcome.with_warnings += bool(row.warnings)
    return outcome
