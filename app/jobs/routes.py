"""The operator's system check: start it, follow it to its result (operators only, else 404)."""

from flask import abort, flash, redirect, render_template, request, url_for

from app.core.errors import wants_json
from app.extensions import db
from app.jobs import bp
from app.jobs.forms import StartSystemCheckForm
from app.jobs.services import QueueUnavailable, start_system_check
from app.models import BackgroundJob
from app.operators.services import operator_required


def _get_job_or_404(job_id) -> BackgroundJob:
    job = db.session.get(BackgroundJob, job_id)
    if job is None:
        abort(404)
    return job


@bp.post("")
@operator_required
def start_check():
    form = StartSystemCheckForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        job = start_system_check()
    except QueueUnavailable:
        flash("Background work is unavailable right now. Try again in a moment.", "error")
        return redirect(url_for("operators.console")), 303
    flash("System check queued.", "success")
    return redirect(url_for("jobs.show", job_id=job.id)), 303


@bp.get("/<uuid:job_id>")
@operator_required
def show(job_id):
    job = _get_job_or_404(job_id)
    return render_template("jobs/show.html", job=job)


@bp.get("/<uuid:job_id>/status")
@operator_required
def status(job_id):
    """The status panel alone: polled by the page while the job runs, or as JSON."""
    job = _get_job_or_404(job_id)
    if wants_json() or request.args.get("format") == "json":
        return {
            "id": str(job.id),
            "kind": job.kind,
            "status": job.status,
            "progress": job.progress,
            "result": job.result,
            "error": job.error,
        }
    return render_template("jobs/_status.html", job=job)
