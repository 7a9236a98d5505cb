"""CSV import of issues: the upload, the column mapping, checking rows, creating issues in batches.

The web process checks and stores the upload (``store_upload``) and proposes a mapping
(``guess_mapping``); the job (``app/imports/jobs.py``) reads the stored file row by row
(``read_rows``), checks each one (``RowChecker``) and creates the good ones a batch at a time
(``create_issues``).

Re-imports: each created issue keeps an ``import_key``, a hash of its row's mapped values (or of
its ID column when one is mapped), unique per project. A row whose key already exists is counted
as a duplicate and skipped, so importing the same file twice, or a job run again after its
worker died, creates nothing twice.

A bad optional value (state, priority, an unknown assignee or label, a due date, an estimate) is
left out of the issue and reported as a warning; in strict mode it rejects the row, as a bad
required value (the title) always does. Rejected rows and warnings are kept per import task
(``problems.py``). Labels are matched by name and never created (a typo would otherwise create a
stray label). Assignees are matched among the organization's members
by email or by exact name. Imported issues notify nobody; their assignees watch them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import func, select, update

from app.extensions import db
from app.imports.mapping import FIELDS, IGNORE, MappingError, guess_mapping, mapping_from_form
from app.imports.problems import (
    PROBLEMS_PER_PAGE,
    Outcome,
    count_outcomes,
    problem_page,
    rejected_row,
    rejected_rows_csv,
    warned_row,
)
from app.imports.rows import IssueRow, RowChecker, RowProblem
from app.imports.uploads import Upload, UploadError, delete_upload, load_upload, read_rows, store_upload
from app.models import Issue, IssueActivity, IssueAssignee, IssueLabel, IssueWatcher, Project
from app.models.base import new_id, utcnow
from app.plans import quotas
from app.projects.workflow import default_state_key

#: The import's interface: the upload (uploads.py), the mapping (mapping.py), checking rows
#: (rows.py), the rows with problems (problems.py) and creating issues (here).
__all__ = [
    "FIELDS",
    "IGNORE",
    "PROBLEMS_PER_PAGE",
    "IssueRow",
    "MappingError",
    "Outcome",
    "RowChecker",
    "RowProblem",
    "Upload",
    "UploadError",
    "count_outcomes",
    "create_issues",
    "delete_upload",
    "guess_mapping",
    "load_upload",
    "mapping_from_form",
    "problem_page",
    "read_rows",
    "rejected_row",
    "rejected_rows_csv",
    "store_upload",
    "warned_row",
]

RANK_STEP = 1024.0


def create_issues(
    project_id: uuid.UUID, actor_id: uuid.UUID | None, rows: Iterable[IssueRow]
) -> list[IssueRow]:
    """Create an issue for each row whose import key the project does not have yet.

    Returns the rows created (the others were duplicates); ``QuotaExceeded``, with nothing of
    the batch written, when they would take the organization past its plan's issues. Flushes
    but does not commit: the caller commits the batch together with its progress. The project
    row is locked first (after the organization's), so concurrent imports into one project
    take turns and see each other's keys; its counter moves once for the whole batch (numbers
    stay gap-free: a rolled-back batch gives them all back).
    """
    rows = list(rows)
    if not rows:
        return []
    quotas.check(None, "issues", adding=0)  # the organization's row locked before the project's
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
        return []
    quotas.check(None, "issues", adding=len(new))
    last = db.session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(issue_counter=Project.issue_counter + len(new))
        .returning(Project.issue_counter)
    ).scalar_one()
    default_state = default_state_key(Project.get_scoped(db.session, project_id))
    for row in new:
        row.state = row.state or default_state
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
                closed_at=now if row.closed else None,
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
    return new
