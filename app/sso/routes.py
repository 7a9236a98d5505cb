"""Signing in through an organization's provider: where people start, the provider's callback,
the mailed link that joins an existing account, and an owner's break-glass entry."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.auth import services as accounts
from app.auth import sso_session, two_factor
from app.auth.identity import signed_in
from app.core import audit
from app.core.database import commit_now, write_from_the_start
from app.core.permissions import OWNER, role_can
from app.core.ratelimits import config_limit, source
from app.core.security import InvalidToken, verify_password
from app.core.tenancy import tenant_context
from app.core.web import safe_next
from app.extensions import db, limiter
from app.sso import bp, domains, signin
from app.sso.forms import BreakGlassForm, StartForm


def _enabled_organization(slug: str):
    """The organization and its connection, when single sign-on is on there; else 404."""
    org = signin.organization_by_slug(slug)
    connection = signin.enabled_connection(org)
    if connection is None:
        abort(404, "This organization does not use single sign-on.")
    return org, connection


@bp.route("", methods=["GET", "POST"])
def start_page():
    form = StartForm()
    if form.validate_on_submit():
        address = form.address.data.strip().lower()
        if "@" in address:
            org = domains.organization_for_email(address)
        else:
            org = signin.organization_by_slug(address.strip("/"))
        if signin.enabled_connection(org) is not None:
            # A page that moves on by itself, not a redirect: the provider is another origin, and
            # browsers hold a form's whole chain of redirects to the policy's form-action 'self'.
            start_url = url_for("sso.start", slug=org.slug, next=safe_next(request.args.get("next")))
            return render_template("sso/continue.html", organization=org, start_url=start_url)
        form.address.errors.append(
            "No organization signs in with single sign-on at that address. "
            "Check it, or log in with your password."
        )
    status = 422 if request.method == "POST" else 200
    return render_template("sso/start.html", form=form), status


@bp.get("/<slug>/start")
@limiter.limit(config_limit("SSO_LIMIT_PER_IP"), key_func=source)
def start(slug):
    next_url = safe_next(request.args.get("next"))
    if request.args.get("trial"):
        org = signin.organization_by_slug(slug)
        access = signed_in().access_to(org.slug) if org is not None and signed_in() else None
        if access is None or not role_can(access.role, "org.update"):
            abort(404)
        connection = signin.connection_for(org)
        if connection is None:
            abort(404)
        return _begin(org, connection, next_url, trial=True)
    org, connection = _enabled_organization(slug)
    return _begin(org, connection, next_url)


def _begin(org, connection, next_url, trial=False):
    try:
        return signin.begin(org, connection, next_url, trial)
    except signin.SignInError as exc:
        return render_template("sso/failed.html", organization=org, message=str(exc)), 502


@bp.get("/<slug>/callback")
@limiter.limit(config_limit("SSO_LIMIT_PER_IP"), key_func=source)
def callback(slug):
    write_from_the_start()  # the provider's code works once: this view must never run twice
    org = signin.organization_by_slug(slug)
    connection = signin.connection_for(org) if org is not None else None
    if connection is None:
        abort(404)
    try:
        outcome = signin.finish(org, connection)
    except signin.SignInError as exc:
        commit_now("the failed sign-in is audited though the page answers 400")
        return render_template("sso/failed.html", organization=org, message=str(exc)), 400
    if outcome.trial is not None:
        return render_template("sso/trial.html", organization=org, claims=outcome.trial)
    if outcome.link_sent_to is not None:
        return render_template("sso/link_sent.html", organization=org, email=outcome.link_sent_to)
    _sign_in(org, outcome.user)
    return redirect(outcome.next_url or url_for("org.dashboard", org_slug=org.slug), 303)


def _sign_in(org, user) -> None:
    """Sign ``user`` in (a fresh session unless they are the one signed in) and mark this
    session as signed in through the organization's provider."""
    account = signed_in()
    if account is None or account.user_id != user.id:
        accounts.audit_sign_in(user, succeeded=True)
        accounts.start_session(user)
    sso_session.mark_signed_in(org.id)


@bp.route("/link/<token>", methods=["GET", "POST"])
def link(token):
    """The mailed link: a page asking to link the account (GET), and the link made (POST)."""
    try:
        request_ = signin.read_link(token)
    except InvalidToken as exc:
        return render_template("auth/link_invalid.html", expired=exc.expired, kind="sso_link"), 400
    if request.method == "GET":
        return render_template("sso/link.html", link=request_, token=token)
    try:
        user = signin.link(request_)
    except signin.SignInError as exc:
        return render_template("sso/failed.html", organization=request_.org, message=str(exc)), 409
    _sign_in(request_.org, user)
    flash(f"Your account is linked: you sign in to {request_.org.name} through its provider.", "success")
    return redirect(url_for("org.dashboard", org_slug=request_.org.slug), 303)


@bp.route("/<slug>/break-glass", methods=["GET", "POST"])
@login_required
@limiter.limit(config_limit("CURRENT_PASSWORD_LIMIT"), key_func=source, methods=["POST"])
def break_glass(slug):
    access = signed_in().access_to(slug.lower())
    if access is None or access.role != OWNER or not access.sso_enforced:
        abort(404)
    form = BreakGlassForm()
    two_factor_on = two_factor.is_enabled(current_user.id)
    if form.validate_on_submit():
        if not verify_password(current_user.password_hash, form.password.data):
            form.password.errors.append("Your password is not correct.")
        elif two_factor_on and not two_factor.check_second_factor(current_user, form.code.data or ""):
            form.code.errors.append(two_factor.WRONG_CODE)
        else:
            with tenant_context(access.org_id):
                audit.record("sso.break_glass", target=current_user, reason=form.reason.data.strip())
                db.session.flush()  # as the organization: its row-level security checks the entry
            sso_session.mark_break_glass(access.org_id)
            flash(
                f"You are in {access.name} without its provider for the next hour. "
                "This entry is in its audit log.",
                "info",
            )
            return redirect(url_for("org.dashboard", org_slug=access.slug), 303)
    status = 422 if request.method == "POST" else 200
    page = render_template("sso/break_glass.html", form=form, access=access, two_factor_on=two_factor_on)
    return page, status
