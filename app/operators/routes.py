"""Operator pages: the console with queue health and failed jobs, and the metrics endpoint."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from redis import RedisError

from app.core.confirm import confirmation
from app.core.metrics import http_metrics_text
from app.extensions import redis_connections
from app.operators import bp
from app.operators import services as ops
from app.operators.services import operator_required
from app.orgs.forms import ConfirmForm
from app.tasks.forms import StartSystemCheckForm


@bp.get("/operators/")
@operator_required
def console():
    try:
        overview = ops.overview(redis_connections.client())
    except RedisError:
        abort(503, "Redis is not answering, so queue health cannot be read. Check /readyz.")
    return render_template(
        "operators/console.html", confirm_form=ConfirmForm(), check_form=StartSystemCheckForm(), **overview
    )


def _job_action(action, done: str, job_id: str):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        action(redis_connections.client(), job_id)
    except ops.OperatorError as exc:
        flash(str(exc), "error")
    else:
        flash(done, "success")
    return redirect(url_for("operators.console") + "#failed", 303)


@bp.post("/operators/jobs/<job_id>/retry")
@operator_required
def retry_job(job_id):
    return _job_action(ops.retry_failed_job, f"Job {job_id} is queued again.", job_id)


@bp.route("/operators/jobs/<job_id>/delete", methods=["GET", "POST"])
@operator_required
def delete_job(job_id):
    """Delete a failed job, once confirmed."""
    if request.method == "GET":
        try:
            job, _priority = ops.failed_job(redis_connections.client(), job_id)
        except ops.OperatorError as exc:
            flash(str(exc), "error")
            return redirect(url_for("operators.console") + "#failed", 303)
        return confirmation(
            f"Delete the failed job {job.id}?",
            [f"“{job.description}” and its error are forgotten; it will not run again."],
            "Delete job",
            url_for("operators.console") + "#failed",
        )
    return _job_action(ops.delete_failed_job, f"Job {job_id} is deleted.", job_id)


@bp.get("/metrics")
def metrics():
    """Prometheus series for a scraper holding ``METRICS_TOKEN``; 404 when no token is configured.

    The queue gauges (read from Redis) and the HTTP series of every web process
    (``app/core/metrics.py``).
    """
    if not current_app.config.get("METRICS_TOKEN"):
        abort(404)
    if not ops.metrics_token_matches(request.headers.get("Authorization")):
        response = Response("a bearer token is required\n", status=401, mimetype="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    try:
        text = ops.metrics_text(redis_connections.client())
    except RedisError:
        return Response("redis is not answering\n", status=503, mimetype="text/plain")
    response = Response(text + http_metrics_text(), content_type=ops.METRICS_CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
