"""Saved views: save the filters on screen under a name, delete one."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.core import edits
from app.core.confirm import confirmation, confirmed
from app.core.names import invisible_text_problem
from app.core.permissions import require
from app.extensions import db
from app.issues import bp
from app.issues import saved_views as views
from app.issues.list_queries import IssueFilters
from app.models import SavedView
from app.orgs.forms import ConfirmForm
from app.projects.services import project_or_404


@bp.post("/views")
@require("work.view")
def save_view():
    """Save the filters on screen under a name. A view of that name with other filters is
    replaced only once the person confirmed it, as it was when they confirmed (else 409)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = request.form.get("name", "").strip()[:80]
    if not name:
        abort(400, "Name the view.")
    if problem := invisible_text_problem(name):
        abort(400, problem)
    filters = IssueFilters.from_args(request.form)
    project = project_or_404(request.form["project_key"]) if request.form.get("project_key") else None
    confirmed = None
    if request.form.get("replace"):
        confirmed = edits.decode(request.form.get(edits.LOADED_FIELD), views.VIEW_FIELDS)
    try:
        view = views.save_view(current_user.id, name, filters.as_dict(), project, confirmed)
    except edits.EditConflict as conflict:
        db.session.rollback()
        existing = views.view_named(current_user.id, name)
        return render_template(
            "issues/replace_view.html",
            name=name,
            fields=[(k, v) for k, v in request.form.items(multi=True) if k not in ("csrf_token", "loaded")],
            loaded=edits.encode(views.view_values(existing)),
            existing_url=views.view_url(existing),
            changed_meanwhile=confirmed is not None,
            conflict=conflict,
        ), 409
    flash(f"Saved the view “{name}”.", "success")
    return redirect(views.view_url(view, project), 303)


@bp.route("/views/<uuid:saved_view_id>/delete", methods=["GET", "POST"])
@require("work.view")
def delete_view(saved_view_id):
    """Delete one of the person's saved views, once confirmed."""
    view = SavedView.get_scoped(db.session, saved_view_id)
    if view is None or view.user_id != current_user.id:
        abort(404)
    if request.method == "GET":
        return confirmation(
            f"Delete the view “{view.name}”?",
            ["Its filters are forgotten; the issues it showed stay as they are."],
            "Delete view",
            views.view_url(view),
        )
    confirmed()
    db.session.delete(view)
    flash("View deleted.", "success")
    return redirect(url_for("issues.all_issues"), 303)


@bp.app_template_global()
def saved_view_url(view):
    return views.view_url(view)
