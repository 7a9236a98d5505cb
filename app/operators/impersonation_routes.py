"""An operator signs in as a person (a POST with a reason), and ends it."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.core.confirm import confirmed
from app.extensions import db
from app.models import User
from app.operators import bp, impersonation
from app.operators.forms import ImpersonateForm
from app.operators.services import is_operator, operator_required


@bp.route("/operators/people/<uuid:user_id>/impersonate", methods=["GET", "POST"])
@operator_required
def impersonate(user_id):
    person = db.session.get(User, user_id)
    if person is None:
        abort(404)
    form = ImpersonateForm()
    if form.validate_on_submit():
        try:
            impersonation.start(current_user._get_current_object(), person, form.reason.data, is_operator)
        except impersonation.ImpersonationRefused as refused:
            form.reason.errors.append(str(refused))
        else:
            minutes = int(impersonation.DURATION.total_seconds() // 60)
            flash(f"You are signed in as {person.name} for {minutes} minutes at most.", "warning")
            return redirect(url_for("home.home"), 303)
    status = 422 if request.method == "POST" else 200
    return render_template(
        "operators/impersonate.html",
        form=form,
        person=person,
        minutes=int(impersonation.DURATION.total_seconds() // 60),
    ), status


@bp.post("/operators/impersonation/end")
@login_required
def end_impersonation():
    if impersonation.current() is None:
        abort(404)
    confirmed()
    impersonation.end(current_user._get_current_object())
    flash("You are no longer signed in as someone else. Sign in as yourself.", "info")
    return redirect(url_for("auth.login"), 303)
