"""Outbound webhooks: an organization's endpoints (``/<org>/settings/webhooks``, owners and
admins), the events features publish to them (``events.publish``), and their signed delivery
by workers with retries, a delivery log and redelivery."""

from flask import abort

from app import flags
from app.orgs.context import current_access, tenant_blueprint

#: The feature flag that rolls webhooks out (``app/flags/catalog.py``).
FLAG = "webhooks"

#: The organization's webhook settings.
bp = tenant_blueprint("webhooks", __name__, "/settings/webhooks")


@bp.before_request
def _only_where_rolled_out():
    """An organization the rollout has not reached has no webhook pages (404)."""
    if not flags.enabled(FLAG, current_access().org_id):
        abort(404)


@bp.app_template_global()
def webhooks_on() -> bool:
    """Whether this request's organization has webhooks (its settings page links to them)."""
    access = current_access()
    return access is not None and flags.enabled(FLAG, access.org_id)


from app.webhooks import routes  # noqa: E402,F401
