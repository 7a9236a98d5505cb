"""An organization's single sign-on settings: the provider connection, its check and a trial
sign-in, turning it on and off, enforcing it (owners), and the proven email domains."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.auth import sso_session
from app.core.confirm import ConfirmForm, confirmation, confirmed
from app.core.mail import public_url
from app.core.permissions import require
from app.extensions import db
from app.models import SsoDomain
from app.orgs.context import current_organization
from app.sso import connections, domains
from app.sso import settings_bp as bp
from app.sso.forms import ConnectionForm, DomainForm, EnforceForm


def _page(status: int = 200, **forms):
    org = current_organization()
    connection = connections.connection_of_tenant()
    if "connection_form" not in forms:
        data = {}
        if connection is not None:
            data = {name: getattr(connection, name) for name in ("issuer", "client_id", "default_role")}
        forms["connection_form"] = ConnectionForm(formdata=None, data=data, prefix="connection")
    forms.setdefault("domain_form", DomainForm(prefix="domain"))
    if "enforce_form" not in forms:
        forms["enforce_form"] = EnforceForm(
            formdata=None, data={"enforced": org.sso_enforced_at is not None}, prefix="enforce"
        )
    page = render_template(
        "sso/settings.html",
        organization=org,
        connection=connection,
        domains=domains.domains_of_tenant(),
        record_name=domains.record_name,
        record_value=domains.record_value,
        callback_url=public_url("sso.callback", slug=org.slug),
        signed_in_through=sso_session.signed_in_through(org.id),
        confirm_form=ConfirmForm(),
        **forms,
    )
    return page, status


def _back():
    return redirect(url_for("sso_settings.index"), 303)


@bp.get("")
@require("org.update")
def index():
    return _page()


@bp.post("/connection")
@require("org.update")
def save_connection():
    form = ConnectionForm(prefix="connection")
    if form.validate_on_submit():
        org = current_organization()
        try:
            connection = connections.save(
                org,
                connections.connection_of_tenant(),
                current_user,
                form.issuer.data,
                form.client_id.data,
                form.client_secret.data or "",
                form.default_role.data,
            )
        except connections.SettingsError as exc:
            form.issuer.errors.append(str(exc))
        else:
            if connection.check_problem:
                flash(f"Saved, but the provider could not be read: {connection.check_problem}", "error")
            else:
                flash("Saved. The provider's discovery document and keys were read.", "success")
            return _back()
    return _page(422, connection_form=form)


@bp.post("/check")
@require("org.update")
def check():
    confirmed()
    connection = connections.connection_of_tenant() or abort(404)
    problem = connections.check(connection)
    if problem:
        flash(f"The provider could not be read: {problem}", "error")
    else:
        flash("The provider's discovery document and keys were read.", "success")
    return _back()


@bp.post("/enable")
@require("org.update")
def enable():
    confirmed()
    connection = connections.connection_of_tenant() or abort(404)
    try:
        connections.enable(current_organization(), connection, current_user)
    except connections.SettingsError as exc:
        flash(str(exc), "error")
    else:
        flash("Single sign-on is on: members may continue with SSO.", "success")
    return _back()


@bp.post("/disable")
@require("org.update")
def disable():
    confirmed()
    connection = connections.connection_of_tenant() or abort(404)
    connections.disable(current_organization(), connection, current_user)
    flash("Single sign-on is off: members sign in with their passwords.", "success")
    return _back()


@bp.route("/remove", methods=["GET", "POST"])
@require("org.update")
def remove():
    """Remove the connection once confirmed."""
    connection = connections.connection_of_tenant() or abort(404)
    if request.method == "GET":
        return confirmation(
            "Remove single sign-on?",
            [
                "The provider's settings and its client secret are deleted; single sign-on and its "
                "enforcement stop at once, and members sign in with their passwords.",
                "People stay linked to their identities at the provider: set the same provider up "
                "again and they sign in as before.",
            ],
            "Remove single sign-on",
            url_for("sso_settings.index"),
        )
    confirmed()
    connections.remove(current_organization(), connection, current_user)
    flash("Single sign-on is removed.", "success")
    return _back()


@bp.post("/enforce")
@require("org.delete")
def enforce():
    form = EnforceForm(prefix="enforce")
    if form.validate_on_submit():
        org = current_organization()
        try:
            changed = connections.set_enforced(
                org, connections.connection_of_tenant(), current_user, form.enforced.data
            )
        except connections.SettingsError as exc:
            form.enforced.errors.append(str(exc))
        else:
            if changed:
                done = "Single sign-on is enforced." if form.enforced.data else "Single sign-on is optional."
                flash(done, "success")
            return _back()
    return _page(422, enforce_form=form)


@bp.post("/domains")
@require("org.update")
def add_domain():
    form = DomainForm(prefix="domain")
    if form.validate_on_submit():
        try:
            row = domains.add(current_organization(), current_user, form.domain.data)
        except domains.DomainError as exc:
            form.domain.errors.append(str(exc))
        else:
            flash(f"Added {row.domain}: publish its TXT record, then check it.", "success")
            return _back()
    return _page(422, domain_form=form)


def _domain(sso_domain_id) -> SsoDomain:
    return SsoDomain.get_scoped(db.session, sso_domain_id) or abort(404)


@bp.post("/domains/<sso_domain_id>/verify")
@require("org.update")
def verify_domain(sso_domain_id):
    confirmed()
    row = _domain(sso_domain_id)
    try:
        domains.verify(current_organization(), current_user, row)
    except domains.DomainError as exc:
        flash(str(exc), "error")
    else:
        flash(f"{row.domain} is verified.", "success")
    return _back()


@bp.route("/domains/<sso_domain_id>/remove", methods=["GET", "POST"])
@require("org.update")
def remove_domain(sso_domain_id):
    """Remove a domain once confirmed: people at it no longer join by signing in."""
    row = _domain(sso_domain_id)
    if request.method == "GET":
        return confirmation(
            f"Remove {row.domain}?",
            [
                f"People with an address at {row.domain} no longer join by signing in; members stay members.",
                "Another organization may then prove the domain. To use it again, publish a new record.",
            ],
            "Remove this domain",
            url_for("sso_settings.index"),
        )
    confirmed()
    domains.remove(current_organization(), current_user, row)
    flash(f"Removed {row.domain}.", "success")
    return _back()
