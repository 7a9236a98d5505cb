"""Outbound webhooks: an organization's endpoints (``/<org>/settings/webhooks``, owners and
admins), the events features publish to them (``events.publish``), and their signed delivery
by workers with retries, a delivery log and redelivery."""

from app.orgs.context import tenant_blueprint

#: The organization's webhook settings.
bp = tenant_blueprint("webhooks", __name__, "/settings/webhooks")

from app.webhooks import routes  # noqa: E402,F401
