"""An organization's plan and what it uses (owners and admins): ``/<org>/settings/plan``."""

from __future__ import annotations

from flask import render_template

from app.core.permissions import require
from app.orgs.context import current_organization, tenant_blueprint
from app.plans import quotas
from app.plans.catalog import size

#: The organization's plan and usage (owners and admins).
bp = tenant_blueprint("plans", __name__, "/settings/plan")


@bp.get("")
@require("org.update")
def usage():
    """Each limit of the plan, used and included, read now (the page is not cached)."""
    organization = current_organization()
    return render_template(
        "plans/usage.html",
        organization=organization,
        plan=quotas.plan_of(organization),
        usage=quotas.usage(organization),
        size=size,
    )
