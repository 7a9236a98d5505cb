"""Operator pages about the organizations: their usage, the people, suspending one."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.core.confirm import confirmation, confirmed
from app.extensions import db
from app.models import Organization
from app.operators import bp, tenants
from app.operators.forms import SuspendForm
from app.operators.services import operator_required


def _organization_or_404(org_id) -> Organization:
    org = db.session.get(Organization, org_id)
    if org is None:
        abort(404)
    return org


def _page_number() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


@bp.get("/operators/organizations")
@operator_required
def organizations():
    query, page = request.args.get("q", "")[:100], _page_number()
    found, total = tenants.organizations(query, page)
    return render_template(
        "operators/organizations.html",
        organizations=found,
        total=total,
        query=query,
        page=page,
        pages=max(1, -(-total // tenants.PAGE_SIZE)),
    )


@bp.get("/operators/people")
@operator_required
def people():
    query = request.args.get("q", "")[:100]
    return render_template("operators/people.html", people=tenants.find_people(query), query=query)


@bp.route("/operators/organizations/<uuid:org_id>/suspend", methods=["GET", "POST"])
@operator_required
def suspend(org_id):
    org = _organization_or_404(org_id)
    form = SuspendForm()
    if form.validate_on_submit():
        try:
            tenants.suspend(org, current_user, form.reason.data)
        except tenants.SuspensionRefused as refused:
            db.session.rollback()
            form.reason.errors.append(str(refused))
        else:
            flash(f"{org.name} is suspended; its owners are told why.", "success")
            return redirect(url_for("operators.organizations", q=org.slug), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("operators/suspend.html", form=form, org=org), status


@bp.route("/operators/organizations/<uuid:org_id>/unsuspend", methods=["GET", "POST"])
@operator_required
def unsuspend(org_id):
    org = _organization_or_404(org_id)
    back = url_for("operators.organizations", q=org.slug)
    if request.method == "GET":
        return confirmation(
            f"Open {org.name} again?",
            ["Its members reach its pages again; its owners are told."],
            "Open it again",
            back,
        )
    confirmed()
    try:
        tenants.unsuspend(org, current_user)
    except tenants.SuspensionRefused as refused:
        db.session.rollback()
        flash(str(refused), "error")
    else:
        flash(f"{org.name} is open again.", "success")
    return redirect(back, 303)
