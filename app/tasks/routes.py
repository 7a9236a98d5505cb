"""A task's page: a live progress bar (htmx polling), then the result or the error."""

from __future__ import annotations

from flask import abort, render_template, request

from app.core.errors import wants_json
from app.core.permissions import require
from app.tasks import bp
from app.tasks.services import recent_tasks, visible_task_or_none


def _task_or_404(task_id):
    task = visible_task_or_none(task_id)
    if task is None:
        abort(404)
    return task


@bp.get("")
@require("work.view")
def index():
    return render_template("tasks/index.html", tasks=recent_tasks())


@bp.get("/<uuid:task_id>")
@require("work.view")
def show(task_id):
    return render_template("tasks/show.html", task=_task_or_404(task_id))


@bp.get("/<uuid:task_id>/status")
@require("work.view")
def status(task_id):
    """The status panel alone: polled by the page while the task runs, or as JSON."""
    task = _task_or_404(task_id)
    if wants_json() or request.args.get("format") == "json":
        return {
            "id": str(task.id),
            "kind": task.kind,
            "status": task.status,
            "progress": task.progress,
            "message": task.message,
            "result": task.result,
            "error": task.error,
        }
    return render_template("tasks/_status.html", task=task)
