"""Creating organizations and answering invitations."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.auth import services as accounts
from app.auth.forms import InvitedSignUpForm
from app.auth.passwords import hash_new_password
from app.core.dates import time_zone_or_default
from app.core.permissions import ROLE_LABELS
from app.core.security import InvalidToken
from app.extensions import db
from app.models import User
from app.models.base import utcnow
from app.orgs import bp
from app.orgs import services as orgs
from app.orgs.forms import ConfirmForm, OrganizationForm


def top_level_paths() -> set[str]:
    """First path segments used by the app's own pages (never organization slugs)."""
    segments = set()
    for rule in current_app.url_map.iter_rules():
        first = rule.rule.lstrip("/").split("/", 1)[0]
        if first and not first.startswith("<"):
            segments.add(first)
    return segments


@bp.route("/orgs/new", methods=["GET", "POST"])
@login_required
def new():
    form = OrganizationForm()
    if form.validate_on_submit():
        slug = (form.slug.data or "").strip().lower()
        if slug and (problem := orgs.slug_problem(slug, top_level_paths())):
            form.slug.errors.append(problem)
        else:
            org = orgs.create_organization(
                current_user, form.name.data, slug or orgs.available_slug(form.name.data, top_level_paths())
            )
            flash(f"{org.name} is ready. Invite your team from Members.", "success")
            return redirect(url_for("org.dashboard", org_slug=org.slug), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("orgs/new.html", form=form), status


def _invitation_or_error(token):
    try:
        return orgs.invitation_from_token(token), None
    except InvalidToken as exc:
        page = render_template("auth/link_invalid.html", expired=exc.expired, kind="invitation")
        return (None, None), (page, 400)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token):
    (org, invitation), error = _invitation_or_error(token)
    if error:
        return error
    form = ConfirmForm()
    status = 200
    if current_user.is_authenticated and form.validate_on_submit():
        try:
            orgs.accept(org, invitation, current_user)
        except orgs.OrgError as exc:  # the plan has no seat left (the 422 rolls the request back)
            form.form_errors.append(str(exc))
            status = 422
        else:
            flash(f"You joined {org.name}.", "success")
            return redirect(url_for("org.dashboard", org_slug=org.slug), 303)
    existing = accounts.find_user(invitation.email)
    page = render_template(
        "orgs/invitation.html",
        org=org,
        invitation=invitation,
        invited_role=ROLE_LABELS[invitation.role],
        inviter=invitation.invited_by.name if invitation.invited_by else None,
        form=form,
        token=token,
        has_account=existing is not None,
    )
    return page, status


@bp.route("/invitations/<token>/signup", methods=["GET", "POST"])
def invitation_signup(token):
    """Create an account from an invitation: the link proves the address, so it is verified."""
    (org, invitation), error = _invitation_or_error(token)
    if error:
        return error
    if current_user.is_authenticated or accounts.find_user(invitation.email) is not None:
        return redirect(url_for("orgs.invitation", token=token))
    form = InvitedSignUpForm()
    if form.validate_on_submit():
        user = User(
            email=invitation.email,
            name=form.name.data.strip(),
            password_hash=hash_new_password(form.password.data),
            email_verified_at=utcnow(),
            time_zone=time_zone_or_default(form.time_zone.data),
        )
        db.session.add(user)
        db.session.flush()
        try:
            orgs.accept(org, invitation, user)
        except orgs.OrgError as exc:  # no seat left: the 422 rolls the new account back too
            form.form_errors.append(str(exc))
        else:
            accounts.start_session(user)
            flash(f"Welcome to {org.name}!", "success")
            return redirect(url_for("org.dashboard", org_slug=org.slug), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("orgs/invitation_signup.html", form=form, org=org, invitation=invitation), status
