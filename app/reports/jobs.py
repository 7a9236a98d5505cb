"""Computing an organization's (or a project's) reports into its snapshot."""

from __future__ import annotations

import uuid
from datetime import date

from app.core.queue.queues import DEFAULT, job
from app.core.queue.tracking import TaskError, TaskProgress, finished_result, tracked
from app.extensions import db
from app.models import Project
from app.models.base import utcnow
from app.reports import queries
from app.reports.services import store_snapshot


# Someone is waiting on the page (it shows the last snapshot meanwhile): default, not low.
@job(DEFAULT, timeout=300)
def compute_reports(task_id: str, project_id: str | None, week_start: str, data_version: str) -> dict:
    """Aggregate the scope's reports (throughput, cycle time, burn-up, open issues) and store them.

    Runs as the organization (the worker sets the tenant from the job). ``data_version`` is
    the version the page asked for; the numbers are read afterwards, so they are at least
    that fresh. Run again after it finished, it returns the recorded result.
    """
    done, result = finished_result(task_id)
    if done:
        return result
    with tracked(task_id) as task:
        project = None
        if project_id is not None:
            project = Project.get_scoped(db.session, uuid.UUID(project_id))
            if project is None:
                raise TaskError("The project no longer exists.")
        progress = TaskProgress(task, total=5, noun="reports")
        computed_at = utcnow()
        data = queries.compute(project.id if project else None, date.fromisoformat(week_start), progress)
        store_snapshot(project.id if project else None, data_version, computed_at, data)
        result = {
            "scope": f"{project.name} ({project.key})" if project else "Organization",
            "project_key": project.key if project else None,
            "issues_done_in_window": sum(week["done"] for week in data["throughput"]),
            "open_issues": sum(state["count"] for state in data["open_by_state"]),
        }
        task.mark_finished(result, message="Reports ready.")
        db.session.commit()
        return result
