"""A task's page and its status panel (polled with htmx while the task runs, or read as JSON).

One page and one panel serve an organization's tasks and the operators' system checks; only
who may follow them differs (the organization's members, or operators).
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from app.core.errors import wants_json
from app.core.permissions import require
from app.operators.services import operator_required
from app.tasks import bp, system_bp
from app.tasks.forms import StartSystemCheckForm
from app.tasks.services import QueueUnavailable, recent_tasks, start_system_check, visible_task_or_none


@bp.app_template_global()
def task_url(task, page: str = "show") -> str:
    """The task's page (or ``page="status"``: its panel), among the organization's or the operators'."""
    blueprint = system_bp if task.is_system_work else bp
    return url_for(f"{blueprint.name}.{page}", task_id=task.id)


def _task_or_404(task_id):
    task = visible_task_or_none(task_id)
    if task is None:
        abort(404)
    return task


def _page(task_id):
    return render_template("tasks/show.html", task=_task_or_404(task_id))


def _status(task_id):
    """The status panel alone, or the task as JSON."""
    task = _task_or_404(task_id)
    if wants_json() or request.args.get("format") == "json":
        return {
            "id": str(task.id),
            "kind": task.kind,
            "status": task.status,
            "status_label": task.status_label,
            "attention": task.attention,
            "counts": task.result.get("counts") if isinstance(task.result, dict) else None,
            "progress": task.progress,
            "message": task.message,
            "result": task.result,
            "error": task.error,
        }
    return render_template("tasks/_status.html", task=task)


# --- an organization's tasks ----------------------------------------------------------------


@bp.get("")
@require("work.view")
def index():
    return render_template("tasks/index.html", tasks=recent_tasks())


@bp.get("/<uuid:task_id>")
@require("work.view")
def show(task_id):
    return _page(task_id)


@bp.get("/<uuid:task_id>/status")
@require("work.view")
def status(task_id):
    return _status(task_id)


# --- the operators' system check --------------------------------------------------------------
# Same URLs as before the two records of background work became one (endpoints were
# ``jobs.*``): pages open from before a deploy keep polling their status panel.


@system_bp.post("")
@operator_required
def start():
    form = StartSystemCheckForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        task = start_system_check()
    except QueueUnavailable:
        flash("Background work is unavailable right now. Try again in a moment.", "error")
        return redirect(url_for("operators.console")), 303
    flash("System check queued.", "success")
    return redirect(url_for("system_check.show", task_id=task.id)), 303


@system_bp.get("/<uuid:task_id>", endpoint="show")
@operator_required
def show_system_check(task_id):
    return _page(task_id)


@system_bp.get("/<uuid:task_id>/status", endpoint="status")
@operator_required
def status_of_system_check(task_id):
    return _status(task_id)
