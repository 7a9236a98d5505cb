"""Importing issues from CSV: upload, preview with the column mapping, then a background task."""

from __future__ import annotations

import re

from flask import Response, abort, flash, redirect, render_template, request, url_for

from app.core.permissions import require
from app.imports import bp
from app.imports import services as imports
from app.imports.forms import MappingForm, UploadForm
from app.models.work import PRIORITY_LABELS
from app.plans import quotas
from app.projects.services import project_or_404
from app.projects.workflow import state_names
from app.tasks.services import QueueUnavailable, start_task, visible_task_or_none


def _back_from_archived(project):
    """An archived project takes no imports: say so and go back to its issues."""
    flash(f"{project.key} is archived: unarchive it to import issues into it.", "error")
    return redirect(url_for("issues.project_list", project_key=project.key), 303)


def _outcome(project, upload, mapping, strict):
    """What importing with this mapping and mode would do, or why the mapping cannot work."""
    try:
        checked = imports.mapping_from_form(upload.header, mapping)
    except imports.MappingError as exc:
        return None, str(exc)
    return imports.count_outcomes(upload, checked, strict, project.id), None


def _preview(project, upload, form, mapping, error=None, status=200):
    outcome, outcome_error = _outcome(project, upload, mapping, form.strict.data)
    return render_template(
        "imports/preview.html",
        project=project,
        upload=upload,
        form=form,
        mapping=mapping,
        fields=imports.FIELDS,
        error=error,
        outcome=outcome,
        outcome_error=outcome_error,
        state_labels=state_names(project.key),
        priority_labels=PRIORITY_LABELS,
    ), status


def _upload_gone(project):
    upload_form = UploadForm()
    upload_form.file.errors = ["That upload is no longer available: upload the file again."]
    return render_template("imports/upload.html", project=project, form=upload_form), 422


def _submitted_preview(project):
    """The preview's form as submitted and its upload, or the page to answer instead (``form`` None)."""
    if project.archived:
        return None, None, _back_from_archived(project)
    form = MappingForm()
    stored = imports.load_upload(form.upload.data) if form.validate_on_submit() else None
    if stored is None:
        return None, None, _upload_gone(project)
    return form, stored, None


def _chosen(upload) -> list[str | None]:
    return [request.form.get(f"column-{index}") for index in range(len(upload.header))]


@bp.route("/projects/<project_key>/import", methods=["GET", "POST"])
@require("work.edit")
def upload(project_key):
    project = project_or_404(project_key)
    if project.archived:
        return _back_from_archived(project)
    form = UploadForm()
    if form.validate_on_submit():
        try:
            stored = imports.store_upload(form.file.data.stream, form.file.data.filename)
        except imports.UploadError as exc:
            form.file.errors.append(str(exc))
        else:
            mapping_form = MappingForm(upload=stored.token, strict=form.strict.data)
            return _preview(project, stored, mapping_form, imports.guess_mapping(stored.header))
    status = 422 if request.method == "POST" else 200
    return render_template("imports/upload.html", project=project, form=form), status


@bp.post("/projects/<project_key>/import/start")
@require("work.edit")
def start(project_key):
    project = project_or_404(project_key)
    form, stored, answer = _submitted_preview(project)
    if form is None:
        return answer
    chosen = _chosen(stored)
    try:
        mapping = imports.mapping_from_form(stored.header, chosen)
        quotas.check(None, "issues", adding=stored.rows)
    except imports.MappingError as exc:
        return _preview(project, stored, form, chosen, error=str(exc), status=422)
    except quotas.QuotaExceeded as exc:
        error = (
            f"This file has {stored.rows:,} rows and the organization has {exc.used:,} issues,"
            f" so nothing was imported. {exc}"
        )
        return _preview(project, stored, form, chosen, error=error, status=422)
    try:
        task = start_task(
            "import",
            "app.imports.jobs.import_issues",
            str(project.id),
            stored.token,
            mapping,
            stored.rows,
            bool(form.strict.data),
            description=f"Import {stored.filename} into {project.key}",
        )
    except QueueUnavailable as exc:
        flash("Background work is unavailable right now; nothing was imported. Try again.", "error")
        task = exc.task
    return redirect(url_for("tasks.show", task_id=task.id), 303)


@bp.post("/projects/<project_key>/import/check")
@require("work.edit")
def check(project_key):
    """The preview again, its counts for the mapping and mode now chosen (htmx takes the counts)."""
    project = project_or_404(project_key)
    form, stored, answer = _submitted_preview(project)
    return answer if form is None else _preview(project, stored, form, _chosen(stored))


@bp.app_template_global()
def import_problems(task, page=None):
    """A page of an import task's rows with problems (for its result template)."""
    return imports.problem_page(task.id, page)


@bp.get("/imports/<uuid:task_id>/rejected.csv")
@require("work.view")
def rejected_rows(task_id):
    """The import's rejected rows as CSV: the file's columns and the reasons, to fix and import again."""
    task = visible_task_or_none(task_id)
    if task is None or task.kind != "import" or "header" not in (task.result or {}):
        abort(404)
    stem = re.sub(r"[^\w.-]+", "-", task.result["file"].rsplit(".", 1)[0]).strip("-.") or "import"
    return Response(
        imports.rejected_rows_csv(task.id, task.result["header"]),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{stem}-rejected.csv"'},
    )
