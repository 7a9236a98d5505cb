"""A person deletes their account (after a grace period), or keeps it."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.auth import bp, deletion
from app.auth.forms import DeleteAccountForm
from app.core.confirm import confirmation, confirmed
from app.core.ratelimits import current_password_limit
from app.extensions import db


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
@current_password_limit
def delete_account():
    if current_user.deletion_due_at is not None:
        return redirect(url_for("auth.account"))
    form = DeleteAccountForm()
    if form.validate_on_submit():
        try:
            deletion.request_deletion(current_user, form.password.data)
        except deletion.AccountDeletionRefused as refused:
            db.session.rollback()
            form.password.errors.append(str(refused))
        else:
            flash("Your account will be deleted in 7 days. Until then you can keep it.", "warning")
            return redirect(url_for("auth.account"), 303)
    status = 422 if request.method == "POST" else 200
    only_theirs = deletion.organizations_only_they_own(current_user.id)
    return render_template(
        "auth/delete_account.html", form=form, only_theirs=only_theirs, grace_days=deletion.GRACE.days
    ), status


@bp.route("/account/delete/cancel", methods=["GET", "POST"])
@login_required
def cancel_account_deletion():
    if request.method == "GET":
        return confirmation(
            "Keep your account?",
            ["Its deletion is cancelled: nothing of it will be deleted."],
            "Keep my account",
            url_for("auth.account"),
        )
    confirmed()
    try:
        deletion.cancel_deletion(current_user)
    except deletion.AccountDeletionRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for("auth.account"), 303)
    flash("Your account is kept: its deletion is cancelled.", "success")
    return redirect(url_for("auth.account"), 303)
