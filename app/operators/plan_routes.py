"""Operators putting an organization on a plan (``app/plans/catalog.py``), and setting the feature
flags (``app/flags/``)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.extensions import db
from app.flags import FLAGS
from app.flags import services as flags
from app.models import FeatureFlag, Organization
from app.operators import bp, tenants
from app.operators.forms import FlagForm, PlanForm
from app.operators.services import operator_required
from app.plans import quotas
from app.plans.catalog import PLANS, amount, plan_named, size


@bp.route("/operators/organizations/<uuid:org_id>/plan", methods=["GET", "POST"])
@operator_required
def plan(org_id):
    """The organization's plan and usage against every plan; a change takes effect at once.

    Moving it to a plan below what it already uses is allowed: nothing is removed, it is told
    what is over, and creating more of it is refused until it fits.
    """
    org = db.session.get(Organization, org_id)
    if org is None:
        abort(404)
    form = PlanForm(data={"plan": org.plan})
    if form.validate_on_submit():
        chosen = plan_named(form.plan.data)
        if chosen.name != org.plan:
            over = tenants.change_plan(org, current_user, chosen)
            if over:
                flash(
                    f"{org.name} is on {chosen.label} now, and uses more than it includes: "
                    + "; ".join(f"{item.used:,} of {amount(item.limit, item.allowed)}" for item in over)
                    + ". Nothing is removed; creating more is refused until it fits.",
                    "warning",
                )
            else:
                flash(f"{org.name} is on {chosen.label} now.", "success")
        return redirect(url_for("operators.plan", org_id=org.id), 303)
    status = 422 if request.method == "POST" else 200
    return render_template(
        "operators/plan.html",
        org=org,
        form=form,
        usage=quotas.usage(org),
        plans=list(PLANS.values()),
        size=size,
        current=quotas.plan_of(org),
    ), status


@bp.get("/operators/flags")
@operator_required
def flags_page():
    return _flags_page()


def _flags_page(forms: dict | None = None, status: int = 200):
    rows = flags.rows()
    forms = forms or {}
    for name in FLAGS:
        if name not in forms:
            row = rows.get(name)
            data = {"mode": FeatureFlag.ON if FLAGS[name].default_on else FeatureFlag.OFF, "percentage": 0}
            if row is not None:
                data = {
                    "mode": row.mode,
                    "percentage": row.percentage,
                    "organizations": "\n".join(flags.slugs_of(row.organization_ids)),
                }
            forms[name] = FlagForm(formdata=None, data=data, prefix=name)
    return render_template("operators/flags.html", flags=FLAGS, rows=rows, forms=forms), status


@bp.post("/operators/flags/<name>")
@operator_required
def set_flag(name):
    if name not in FLAGS:
        abort(404)
    form = FlagForm(prefix=name)
    if form.validate_on_submit():
        try:
            flags.set_flag(
                current_user,
                name,
                form.mode.data,
                form.percentage.data,
                flags.parse_slugs(form.organizations.data or ""),
            )
        except flags.FlagError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            state = FeatureFlag.MODE_LABELS[form.mode.data].lower()
            if form.mode.data == FeatureFlag.PERCENTAGE:
                state = f"on for {form.percentage.data or 0}% of organizations"
            flash(f"{name}: {state}.", "success")
            return redirect(url_for("operators.flags_page") + f"#flag-{name}", 303)
    return _flags_page({name: form}, 422)
