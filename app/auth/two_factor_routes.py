"""Two-factor authentication pages: setting it up and turning it off from the account page,
new recovery codes, and the sign-in's second step."""

from __future__ import annotations

from functools import partial

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.auth import bp, two_factor
from app.auth import services as accounts
from app.auth.forms import (
    ConfirmTwoFactorForm,
    DisableTwoFactorForm,
    RecoveryCodesForm,
    StartTwoFactorForm,
    TwoFactorSignInForm,
)
from app.core.ratelimits import config_limit, current_password_limit, failed_login, source
from app.extensions import limiter


def _refusal_of(change) -> str | None:
    """Run ``change()``: None when done, else why it was refused."""
    try:
        change()
    except two_factor.TwoFactorError as exc:
        return str(exc)
    return None


def _new_codes_page(form, field, make_codes, done: str):
    """For a valid ``form``: the recovery codes ``make_codes()`` returns, shown this once, or
    None with its refusal on ``field``."""
    if not form.validate_on_submit():
        return None
    try:
        codes = make_codes()
    except two_factor.TwoFactorError as exc:
        field.errors.append(str(exc))
        return None
    flash(done, "success")
    return render_template("auth/recovery_codes.html", codes=codes)


@bp.post("/account/two-factor/start")
@login_required
def start_two_factor():
    if StartTwoFactorForm().validate_on_submit():
        try:
            two_factor.start_enrolment(current_user)
        except two_factor.TwoFactorError as exc:
            flash(str(exc), "info")
            return redirect(url_for("auth.account"), 303)
    return redirect(url_for("auth.two_factor_setup"), 303)


@bp.route("/account/two-factor/setup", methods=["GET", "POST"])
@login_required
def two_factor_setup():
    """The secret as a QR code and as text, and the code that confirms it."""
    pending = two_factor.of(current_user.id)
    if pending is None or pending.enabled:
        return redirect(url_for("auth.account"), 303)
    form = ConfirmTwoFactorForm()
    confirm = partial(two_factor.confirm_enrolment, current_user, form.code.data)
    if shown := _new_codes_page(form, form.code, confirm, "Two-factor authentication is on."):
        return shown
    uri = two_factor.provisioning_uri(current_user, pending.secret)
    status = 422 if request.method == "POST" else 200
    page = render_template(
        "auth/two_factor_setup.html", form=form, secret=pending.secret, qr_code=two_factor.qr_code(uri)
    )
    return page, status


@bp.post("/account/two-factor/recovery-codes")
@login_required
@current_password_limit
def regenerate_recovery_codes():
    form = RecoveryCodesForm(prefix="recovery")
    regenerate = partial(two_factor.regenerate_recovery_codes, current_user, form.password.data)
    if shown := _new_codes_page(
        form, form.password, regenerate, "New recovery codes; the old ones no longer work."
    ):
        return shown
    return _security_page(422, recovery_form=form)


@bp.post("/account/two-factor/disable")
@login_required
@current_password_limit
def disable_two_factor():
    form = DisableTwoFactorForm(prefix="disable")
    if form.validate_on_submit():
        refusal = _refusal_of(partial(two_factor.disable, current_user, form.password.data, form.code.data))
        if refusal is None:
            flash("Two-factor authentication is off.", "success")
            return redirect(url_for("auth.account"), 303)
        (form.password if refusal == two_factor.WRONG_PASSWORD else form.code).errors.append(refusal)
    return _security_page(422, disable_form=form)


def _security_page(status: int, recovery_form=None, disable_form=None):
    """The account's two-factor page (with a refused form's errors)."""
    return render_template(
        "auth/two_factor.html",
        recovery_form=recovery_form or RecoveryCodesForm(prefix="recovery"),
        disable_form=disable_form or DisableTwoFactorForm(prefix="disable"),
        codes_left=two_factor.recovery_codes_left(current_user.id),
    ), status


@bp.get("/account/two-factor")
@login_required
def two_factor_settings():
    """Recovery codes and turning two-factor off (while it is on)."""
    if not two_factor.is_enabled(current_user.id):
        return redirect(url_for("auth.account"))
    return _security_page(200)


@bp.route("/login/two-factor", methods=["GET", "POST"])
@limiter.limit(
    config_limit("TWO_FACTOR_LIMIT_PER_IP"), key_func=source, methods=["POST"], deduct_when=failed_login
)
@limiter.limit(
    config_limit("TWO_FACTOR_LIMIT_PER_ACCOUNT"),
    key_func=two_factor.pending_user_key,
    methods=["POST"],
    deduct_when=failed_login,
)
def two_factor_sign_in():
    """The sign-in's second step: a code from the app or a recovery code."""
    pending = two_factor.pending_sign_in()
    if pending is None:
        two_factor.forget_sign_in()
        flash("Your sign-in has expired. Log in again.", "info")
        return redirect(url_for("auth.login"), 303)
    user, next_url = pending
    form = TwoFactorSignInForm()
    if form.validate_on_submit():
        if two_factor.check_second_factor(user, form.code.data):
            accounts.start_session(user)
            return redirect(next_url or accounts.home_for(user), 303)
        form.code.errors.append("That code is not right (or was already used).")
    status = 422 if request.method == "POST" else 200
    return render_template("auth/two_factor_sign_in.html", form=form), status
