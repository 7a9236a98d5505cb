"""Single sign-on per organization over OpenID Connect: where people start and come back
(``/sso/…``), and the organization's settings (``/<org>/settings/sso``)."""

from flask import Blueprint

from app.orgs.context import tenant_blueprint

#: Pages outside any organization: start, the provider's callback, the mailed link, break-glass.
bp = Blueprint("sso", __name__, url_prefix="/sso")
#: The organization's single sign-on settings (owners and admins).
settings_bp = tenant_blueprint("sso_settings", __name__, "/settings/sso")

from app.sso import routes, settings_routes  # noqa: E402,F401
