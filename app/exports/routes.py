"""The organization's exports: start one, list the files kept, download through signed links."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for

from app.core.permissions import can, require
from app.core.storage import file_store
from app.exports import bp
from app.exports import services as exports
from app.extensions import db
from app.orgs.forms import ConfirmForm
from app.tasks.services import QueueUnavailable, recent_tasks


@bp.app_template_global()
def export_download_url(key: str) -> str | None:
    """A fresh signed link to one of the current organization's export files (None if not allowed)."""
    if not can("org.export"):
        return None
    return url_for("exports.download", token=exports.download_token(key))


@bp.get("")
@require("org.export")
def index():
    return render_template(
        "exports/index.html",
        files=exports.available_exports(),
        tasks=recent_tasks(kind=exports.KIND, limit=10),
        form=ConfirmForm(),
        retention_days=exports.retention_days(),
        link_hours=current_app.config["EXPORT_LINK_HOURS"],
    )


@bp.post("")
@require("org.export")
def start():
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired. Reload the page and try again.")
    try:
        task = exports.start_export()
    except QueueUnavailable:
        flash("Background work is unavailable right now; nothing was started. Try again.", "error")
        return redirect(url_for("exports.index"), 303)
    return redirect(url_for("tasks.show", task_id=task.id), 303)


@bp.get("/download")
@require("org.export")
def download():
    """Serve an export named by a signed link: 404 when not valid here, 410 when expired or gone."""
    try:
        export = exports.file_for_token(request.args.get("token", ""))
    except exports.ExportLinkError as exc:
        abort(exc.status, str(exc))
    exports.record_download(export)
    # Written before the file is opened: on SQLite a GET that writes is run again as a writer.
    db.session.flush()
    response = send_file(
        file_store().path(export.key),
        mimetype="application/zip",
        as_attachment=True,
        download_name=export.name,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
