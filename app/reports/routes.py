"""Report pages of an organization and of a project: charts from the latest snapshot.

Views never aggregate issues: they read the snapshot, and when it is out of date they
start (once) the worker's computation and poll until it is stored.
"""

from __future__ import annotations

from flask import Response, abort, redirect, render_template, url_for

from app import flags
from app.core.permissions import require
from app.orgs.context import current_access
from app.orgs.forms import ConfirmForm
from app.projects.services import project_or_404
from app.reports import bp
from app.reports import services as reports
from app.reports.charts import report_charts


def _project(project_key):
    return project_or_404(project_key) if project_key is not None else None


def _urls(project):
    args = {"project_key": project.key} if project else {}
    prefix = "reports.project_" if project else "reports.org_"
    return {
        "page": url_for(prefix + "page", **args),
        "status": url_for(prefix + "status", **args),
        "retry": url_for(prefix + "retry", **args),
        "csv": lambda chart: url_for(prefix + "csv", chart=chart, **args),
    }


def _panel_context(project, state):
    data = state.snapshot.data if state.snapshot else None
    return {
        "project": project,
        "state": state,
        "urls": _urls(project),
        "charts": report_charts(data) if data else {},
        "tables": {name: table(data) for name, table in reports.TABLES.items()} if data else {},
        "retry_form": ConfirmForm(),
        "downloads": _downloads(),
    }


def _downloads() -> bool:
    """Whether the organization has each chart's numbers as CSV (the ``report_downloads`` flag)."""
    return flags.enabled("report_downloads", current_access().org_id)


def _page(project_key):
    project = _project(project_key)
    state = reports.report_state(project)
    return render_template("reports/index.html", **_panel_context(project, state))


def _status(project_key):
    """Polled while the snapshot is out of date: the status line, then (once fresh) the whole panel."""
    project = _project(project_key)
    state = reports.report_state(project)
    if state.fresh or (state.task is not None and state.task.done):
        response = Response(render_template("reports/_panel.html", **_panel_context(project, state)))
        response.headers["HX-Retarget"] = "#report-panel"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    return render_template("reports/_status.html", **_panel_context(project, state))


def _retry(project_key):
    project = _project(project_key)
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    reports.report_state(project, retry=True)
    return redirect(_urls(project)["page"], 303)


def _csv(project_key, chart):
    project = _project(project_key)
    table = reports.TABLES.get(chart)
    if table is None or not _downloads():
        abort(404)
    snapshot = reports.latest_snapshot(project)
    if snapshot is None:
        reports.report_state(project)
        abort(409, "The reports are being computed for the first time; try again in a moment.")
    scope = f"{current_access().slug}-{project.key.lower()}" if project else current_access().slug
    stamp = snapshot.computed_at.strftime("%Y-%m-%d")
    response = Response(reports.table_csv(table(snapshot.data)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{scope}-{chart}-{stamp}.csv"'
    return response


# --- the organization ---------------------------------------------------------------------------


@bp.get("/reports")
@require("work.view")
def org_page():
    return _page(None)


@bp.get("/reports/status")
@require("work.view")
def org_status():
    return _status(None)


@bp.post("/reports/retry")
@require("reports.recompute")
def org_retry():
    return _retry(None)


@bp.get("/reports/<chart>.csv")
@require("work.view")
def org_csv(chart):
    return _csv(None, chart)


# --- one project --------------------------------------------------------------------------------


@bp.get("/projects/<project_key>/reports")
@require("work.view")
def project_page(project_key):
    return _page(project_key)


@bp.get("/projects/<project_key>/reports/status")
@require("work.view")
def project_status(project_key):
    return _status(project_key)


@bp.post("/projects/<project_key>/reports/retry")
@require("reports.recompute")
def project_retry(project_key):
    return _retry(project_key)


@bp.get("/projects/<project_key>/reports/<chart>.csv")
@require("work.view")
def project_csv(project_key, chart):
    return _csv(project_key, chart)
