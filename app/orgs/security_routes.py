"""An organization's security settings: the "require two-factor" policy (owners and admins)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from app.core.permissions import require
from app.orgs import org_bp as bp
from app.orgs import services as orgs
from app.orgs import two_factor_policy
from app.orgs.context import current_organization
from app.orgs.forms import TwoFactorPolicyForm, settings_form


@bp.post("/settings/two-factor")
@require("org.update")
def two_factor_policy_update():
    org = current_organization()
    form = TwoFactorPolicyForm(prefix="policy")
    if form.validate_on_submit():
        try:
            changed = two_factor_policy.set_policy(
                org, current_user, form.required.data, form.grace_days.data
            )
        except two_factor_policy.PolicyError as exc:
            form.required.errors.append(str(exc))
        else:
            if changed:
                flash("The two-factor policy is saved.", "success")
            return redirect(url_for("org.settings"), 303)
    values = orgs.settings_values(org)
    page = render_template(
        "orgs/settings.html", form=settings_form(values, values), policy_form=form, organization=org
    )
    return page, 422
