"""Importing issues from CSV: upload, preview with the column mapping, then a background task."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.core.permissions import require
from app.imports import bp
from app.imports import services as imports
from app.imports.forms import MappingForm, UploadForm
from app.models.work import PRIORITY_LABELS, STATE_LABELS
from app.projects.services import project_or_404
from app.tasks.services import QueueUnavailable, start_task


def _back_from_archived(project):
    """An archived project takes no imports: say so and go back to its issues."""
    flash(f"{project.key} is archived: unarchive it to import issues into it.", "error")
    return redirect(url_for("issues.project_list", project_key=project.key), 303)


def _preview(project, upload, form, mapping, error=None, status=200):
    return render_template(
        "imports/preview.html",
        project=project,
        upload=upload,
        form=form,
        mapping=mapping,
        fields=imports.FIELDS,
        error=error,
        state_labels=STATE_LABELS,
        priority_labels=PRIORITY_LABELS,
    ), status


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
            return _preview(
                project, stored, MappingForm(upload=stored.token), imports.guess_mapping(stored.header)
            )
    status = 422 if request.method == "POST" else 200
    return render_template("imports/upload.html", project=project, form=form), status


@bp.post("/projects/<project_key>/import/start")
@require("work.edit")
def start(project_key):
    project = project_or_404(project_key)
    if project.archived:
        return _back_from_archived(project)
    form = MappingForm()
    stored = imports.load_upload(form.upload.data) if form.validate_on_submit() else None
    if stored is None:
        upload_form = UploadForm()
        upload_form.file.errors = ["That upload is no longer available: upload the file again."]
        return render_template("imports/upload.html", project=project, form=upload_form), 422
    chosen = [request.form.get(f"column-{index}") for index in range(len(stored.header))]
    try:
        mapping = imports.mapping_from_form(stored.header, chosen)
    except imports.MappingError as exc:
        return _preview(project, stored, form, chosen, error=str(exc), status=422)
    try:
        task = start_task(
            "import",
            "app.imports.jobs.import_issues",
            str(project.id),
            stored.token,
            mapping,
            stored.rows,
            description=f"Import {stored.filename} into {project.key}",
        )
    except QueueUnavailable as exc:
        flash("Background work is unavailable right now; nothing was imported. Try again.", "error")
        task = exc.task
    return redirect(url_for("tasks.show", task_id=task.id), 303)
