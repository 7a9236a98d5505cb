"""An owner deletes the organization (after a grace period), or cancels that."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.auth import two_factor
from app.core.confirm import confirmation, confirmed
from app.core.permissions import require
from app.extensions import db
from app.orgs import deletion
from app.orgs import org_bp as bp
from app.orgs.context import current_organization
from app.orgs.forms import DeleteOrganizationForm


@bp.route("/settings/delete", methods=["GET", "POST"])
@require("org.delete")
def delete_organization():
    org = current_organization()
    if org.deletion_due_at is not None:
        return redirect(url_for("org.settings"))
    form = DeleteOrganizationForm()
    if form.validate_on_submit():
        try:
            deletion.request_deletion(org, current_user, form.password.data, form.name.data, form.code.data)
        except deletion.DeletionRefused as refused:
            db.session.rollback()
            getattr(form, refused.field or "name").errors.append(str(refused))
        else:
            flash(
                f"{org.name} will be deleted in 7 days. Until then it is read-only, and you can cancel.",
                "warning",
            )
            return redirect(url_for("org.settings"), 303)
    status = 422 if request.method == "POST" else 200
    asks_code = two_factor.is_enabled(current_user.id)
    page = render_template(
        "orgs/delete.html", form=form, org=org, grace_days=deletion.GRACE.days, asks_code=asks_code
    )
    return page, status


@bp.route("/settings/delete/cancel", methods=["GET", "POST"])
@require("org.delete")
def cancel_deletion():
    org = current_organization()
    if request.method == "GET":
        return confirmation(
            f"Keep {org.name}?",
            ["The deletion is cancelled and the organization can be changed again.", "Every owner is told."],
            "Cancel the deletion",
            url_for("org.settings"),
        )
    confirmed()
    try:
        deletion.cancel_deletion(org, current_user)
    except deletion.DeletionRefused as refused:
        db.session.rollback()
        flash(str(refused), "error")
        return redirect(url_for("org.settings"), 303)
    flash(f"The deletion of {org.name} is cancelled.", "success")
    return redirect(url_for("org.settings"), 303)
