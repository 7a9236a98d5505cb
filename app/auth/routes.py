"""Sign-up, login and logout, email verification, password reset, and the account page."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from app.auth import bp, devices, two_factor
from app.auth import services as accounts
from app.auth.forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    ProfileForm,
    ResendVerificationForm,
    ResetPasswordForm,
    SignUpForm,
    StartTwoFactorForm,
    TimeZoneForm,
    notification_email_form,
)
from app.auth.identity import signed_in
from app.core import edits
from app.core.confirm import ConfirmForm
from app.core.database import commit_now
from app.core.ratelimits import (
    config_limit,
    current_password_limit,
    login_limits,
    signup_limits,
    source,
    typed_account,
)
from app.core.security import InvalidToken
from app.core.web import safe_next
from app.extensions import db, limiter
from app.models import Membership
from app.notifications import services as notifications

CHECK_EMAIL_KEY = "_check_email"


@bp.app_context_processor
def _account_in_layout():
    def my_organizations():
        """The signed-in person's organizations, for the switcher (called by the layout)."""
        account = signed_in()
        return account.organizations if account is not None else ()

    return {"my_organizations": my_organizations, "signed_in_account": signed_in}


def _form_page(template: str, form, **context):
    """Render a form page: 422 when a submitted form has errors, else 200."""
    status = 422 if request.method == "POST" else 200
    return render_template(template, form=form, **context), status


# --- sign-up and verification --------------------------------------------------------------


@bp.route("/signup", methods=["GET", "POST"])
@signup_limits
def signup():
    if current_user.is_authenticated:
        return redirect(accounts.home_for(current_user))
    form = SignUpForm()
    if form.validate_on_submit():
        accounts.sign_up(
            form.name.data, form.email.data, form.password.data, form.organization.data, form.time_zone.data
        )
        session[CHECK_EMAIL_KEY] = accounts.normalize_email(form.email.data)
        return redirect(url_for("auth.check_email"), 303)
    return _form_page("auth/signup.html", form)


@bp.get("/signup/check-email")
def check_email():
    return render_template(
        "auth/check_email.html", email=session.get(CHECK_EMAIL_KEY), form=ResendVerificationForm()
    )


@bp.post("/verify/resend")
@limiter.limit(config_limit("RESET_LIMIT_PER_IP"), key_func=source)
@limiter.limit(config_limit("RESET_LIMIT_PER_ACCOUNT"), key_func=typed_account)
def resend_verification():
    form = ResendVerificationForm()
    if form.validate_on_submit():
        user = accounts.find_user(form.email.data)
        if user is not None and not user.email_verified:
            accounts.send_verification(user)
        session[CHECK_EMAIL_KEY] = accounts.normalize_email(form.email.data)
        flash("If that address has an unconfirmed account, a new link is on its way.", "info")
    return redirect(url_for("auth.check_email"), 303)


@bp.get("/verify/<token>")
def verify_email(token):
    try:
        user = accounts.verify_email(token)
    except InvalidToken as exc:
        return render_template("auth/link_invalid.html", expired=exc.expired, kind="confirmation"), 400
    flash("Your email address is confirmed. Welcome to Worklane!", "success")
    if current_user.is_authenticated and current_user.id == user.id:
        return redirect(accounts.home_for(user))
    return redirect(url_for("auth.login", email=user.email))


# --- login and logout ----------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@login_limits
def login():
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or accounts.home_for(current_user))
    form = LoginForm()
    if request.method == "GET" and request.args.get("email"):
        form.email.data = request.args["email"]
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is None:
            accounts.audit_failed_sign_in(form.email.data)
            form.password.errors.append("The email or password is not correct.")
        elif not user.email_verified:
            accounts.send_verification(user)
            commit_now("the new link is mailed though the login page answers 422")
            form.email.errors.append("Confirm your email address first: we have sent you a new link.")
        elif two_factor.is_enabled(user.id):
            two_factor.begin_sign_in(user, next_url)
            return redirect(url_for("auth.two_factor_sign_in"), 303)
        else:
            accounts.audit_sign_in(user, succeeded=True)
            accounts.start_session(user)
            return redirect(next_url or accounts.home_for(user), 303)
    return _form_page("auth/login.html", form, next_url=next_url)


@bp.post("/logout")
def logout():
    accounts.end_session()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), 303)


# --- forgotten passwords ------------------------------------------------------------------


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit(config_limit("RESET_LIMIT_PER_IP"), key_func=source, methods=["POST"])
@limiter.limit(config_limit("RESET_LIMIT_PER_ACCOUNT"), key_func=typed_account, methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        accounts.request_password_reset(form.email.data)
        return render_template("auth/reset_sent.html", email=accounts.normalize_email(form.email.data))
    return _form_page("auth/forgot_password.html", form)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@limiter.limit(config_limit("RESET_LIMIT_PER_IP"), key_func=source, methods=["POST"])
def reset_password(token):
    try:
        user = accounts.user_for_reset(token)
    except InvalidToken as exc:
        return render_template("auth/link_invalid.html", expired=exc.expired, kind="reset"), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        accounts.reset_password(token, form.password.data)
        flash(
            "Your password is changed and every session was logged out. Log in with the new one.", "success"
        )
        return redirect(url_for("auth.login", email=user.email), 303)
    return _form_page("auth/reset_password.html", form, email=user.email)


# --- the account page ----------------------------------------------------------------------


def _profile_form(values: dict, loaded: dict) -> ProfileForm:
    form = ProfileForm(formdata=None, data=values, prefix="profile")
    form.loaded.data = edits.encode(loaded)
    return form


def _account_page(conflict=None, **forms):
    if "profile_form" not in forms:
        forms["profile_form"] = _profile_form({"name": current_user.name}, {"name": current_user.name})
    forms.setdefault("password_form", ChangePasswordForm(prefix="password"))
    forms.setdefault("email_form", ChangeEmailForm(prefix="email"))
    if "time_zone_form" not in forms:
        forms["time_zone_form"] = TimeZoneForm(
            formdata=None, data={"time_zone": current_user.time_zone}, prefix="zone"
        )
    if "notifications_form" not in forms:
        forms["notifications_form"] = _notifications_form(submitted=False)
    status = 409 if conflict else 422 if request.method == "POST" else 200
    forms.setdefault("confirm_form", ConfirmForm())
    page = render_template(
        "auth/account.html",
        conflict=conflict,
        two_factor_since=two_factor.enabled_since(current_user.id),
        start_two_factor_form=StartTwoFactorForm(),
        signed_in_sessions=devices.sessions_of(current_user),
        **forms,
    )
    return page, status


@bp.get("/account")
@login_required
def account():
    return _account_page()


@bp.post("/account/profile")
@login_required
def update_profile():
    form = ProfileForm(prefix="profile")
    if not form.validate_on_submit():
        return _account_page(profile_form=form)
    loaded = edits.decode(form.loaded.data, ["name"])
    submitted = {"name": form.name.data.strip()}
    try:
        accounts.update_profile(current_user, loaded, submitted)
    except edits.EditConflict as conflict:
        db.session.rollback()
        current = {"name": current_user.name}
        form = _profile_form(edits.after_conflict(current, loaded, submitted), current)
        return _account_page(conflict=conflict, profile_form=form)
    flash("Your name is saved.", "success")
    return redirect(url_for("auth.account"), 303)


@bp.post("/account/time-zone")
@login_required
def update_time_zone():
    """Save the person's time zone; one not in the list is a form error on the account page."""
    form = TimeZoneForm(prefix="zone")
    if form.validate_on_submit():
        accounts.set_time_zone(current_user, form.time_zone.data)
        flash(f"Times are now shown in {form.time_zone.data.replace('_', ' ')}.", "success")
        return redirect(url_for("auth.account"), 303)
    return _account_page(time_zone_form=form)


@bp.post("/account/password")
@login_required
@current_password_limit
def change_password():
    form = ChangePasswordForm(prefix="password")
    if form.validate_on_submit():
        try:
            accounts.change_password(current_user, form.current_password.data, form.password.data)
        except accounts.AccountError as exc:
            form.current_password.errors.append(str(exc))
        else:
            flash("Your password is changed. Your other sessions were logged out.", "success")
            return redirect(url_for("auth.account"), 303)
    return _account_page(password_form=form)


@bp.post("/account/email")
@login_required
@current_password_limit
def change_email():
    form = ChangeEmailForm(prefix="email")
    if form.validate_on_submit():
        try:
            accounts.request_email_change(current_user, form.email.data, form.password.data)
        except accounts.AccountError as exc:
            field = form.password if "password" in str(exc) else form.email
            field.errors.append(str(exc))
        else:
            flash(
                f"We sent a confirmation link to {accounts.normalize_email(form.email.data)}. "
                "Your address changes when you open it.",
                "info",
            )
            return redirect(url_for("auth.account"), 303)
    return _account_page(email_form=form)


def _notifications_form(submitted: bool = True):
    choices = list(Membership.EMAIL_CHOICE_LABELS.items())
    return notification_email_form(notifications.email_preferences(current_user.id), choices, submitted)


@bp.post("/account/notifications")
@login_required
def update_notification_email():
    form = _notifications_form()
    if form.validate_on_submit():
        fields = [name for name in form._fields if name.startswith("org_")]
        loaded = edits.decode(form.loaded.data, [])
        choices = {uuid.UUID(name.removeprefix("org_")): form[name].data for name in fields}
        loaded_choices = {
            uuid.UUID(name.removeprefix("org_")): loaded.get(name) for name in fields if name in loaded
        }
        try:
            notifications.set_email_preferences(current_user.id, choices, loaded_choices)
        except notifications.PreferenceError as exc:
            form.form_errors.append(str(exc))
        except edits.EditConflict as conflict:
            db.session.rollback()
            return _account_page(conflict=conflict)
        else:
            flash("Your notification email choices are saved.", "success")
            return redirect(url_for("auth.account"), 303)
    return _account_page(notifications_form=form)


@bp.post("/account/sessions/end")
@login_required
def end_session():
    """End another of the person's sessions (this one ends by signing out)."""
    handle = request.form.get("session", "")
    ended = next((item for item in devices.sessions_of(current_user) or () if item.handle == handle), None)
    if ended is None or ended.current or not devices.end_session_by_handle(current_user, handle):
        abort(404)
    flash(f"Session ended: {ended.browser}.", "success")
    return redirect(url_for("auth.account"), 303)


@bp.post("/account/sessions/end-others")
@login_required
def end_other_sessions():
    """End every session of the person but this one."""
    count = devices.end_other_sessions(current_user)
    flash(f"{count} other session{'s' if count != 1 else ''} ended.", "success")
    return redirect(url_for("auth.account"), 303)


@bp.get("/account/email/confirm/<token>")
def confirm_email_change(token):
    try:
        accounts.confirm_email_change(token)
    except InvalidToken as exc:
        return render_template("auth/link_invalid.html", expired=exc.expired, kind="email change"), 400
    except accounts.AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("auth.account") if current_user.is_authenticated else url_for("auth.login"))
    flash("Your email address is changed.", "success")
    return redirect(url_for("auth.account") if current_user.is_authenticated else url_for("auth.login"))
