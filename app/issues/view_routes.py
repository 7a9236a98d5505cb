"""Saved views: save the filters on screen under a name; the screen where a person renames,
shares (or keeps personal) and deletes their views, and admins manage the shared ones."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.auth.identity import signed_in_id
from app.core import audit, edits
from app.core.confirm import confirmation, confirmed
from app.core.names import invisible_text_problem
from app.core.permissions import can, require
from app.extensions import db
from app.issues import bp, queries
from app.issues import saved_views as views
from app.issues.list_filters import IssueFilters
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


def _manageable_or_403(saved_view_id) -> SavedView:
    """The view, if the person may change it: 404 if they cannot see it, 403 saying why if they
    may see but not change it."""
    view = views.visible_view(saved_view_id, signed_in_id())
    if view is None:
        abort(404)
    if reason := views.refusal(view, signed_in_id(), can("views.manage_shared")):
        abort(403, reason)
    return view


def _views_page(errors: dict | None = None, status=200):
    me = signed_in_id()
    listed = queries.saved_views_of(me)
    may_manage_shared = can("views.manage_shared")
    rows = [
        (v, views.refusal(v, me, may_manage_shared) is None, edits.encode(views.edit_values(v)))
        for v in listed
    ]
    owners = {str(p.id): p.name for p in queries.people_named({str(v.user_id) for v in listed})}
    return render_template(
        "issues/views.html",
        rows=rows,
        owners=owners,
        me=me,
        errors=errors or {},
        confirm_form=ConfirmForm(),
    ), status


@bp.get("/views")
@require("work.view")
def views_index():
    """The person's saved views and those shared with the organization."""
    return _views_page()


@bp.post("/views/<uuid:saved_view_id>")
@require("work.view")
def update_view(saved_view_id):
    """Rename a view and share it with the organization or keep it personal."""
    view = _manageable_or_403(saved_view_id)
    confirmed()  # the form's CSRF token
    loaded = edits.decode(request.form.get(edits.LOADED_FIELD), views.EDIT_FIELDS)
    name = request.form.get("name", "").strip()[:80]
    problem = "Name the view." if not name else invisible_text_problem(name)
    status = 422
    if not problem:
        try:
            changed = views.update_view(
                view, loaded, {"name": name, "shared": request.form.get("shared") == "1"}
            )
        except views.ViewError as exc:
            db.session.rollback()
            problem = str(exc)
        except edits.EditConflict as conflict:
            db.session.rollback()
            problem, status = f"{conflict} since you loaded this page: it shows the view as it is now.", 409
    if problem:
        return _views_page({str(saved_view_id): problem}, status)
    if changed:
        flash(f"Saved the view “{name}”.", "success")
    return redirect(url_for("issues.views_index"), 303)


@bp.route("/views/<uuid:saved_view_id>/delete", methods=["GET", "POST"])
@require("work.view")
def delete_view(saved_view_id):
    """Delete a saved view, once confirmed (the person's own, or as an admin a shared one)."""
    view = _manageable_or_403(saved_view_id)
    if request.method == "GET":
        shared = " It is shared: it goes for everyone in the organization." if view.shared else ""
        return confirmation(
            f"Delete the view “{view.name}”?",
            [f"Its filters are forgotten; the issues it showed stay as they are.{shared}"],
            "Delete view",
            url_for("issues.views_index"),
        )
    confirmed()
    name = view.name
    if view.shared:  # everyone's view: the deletion goes in the audit log
        audit.record("view.deleted", target=view, name=name)
    db.session.delete(view)
    flash(f"View “{name}” deleted.", "success")
    return redirect(url_for("issues.views_index"), 303)


@bp.app_template_global()
def saved_view_url(view):
    return views.view_url(view)
