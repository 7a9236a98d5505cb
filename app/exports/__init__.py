"""Tenant export: the organization as a zip of JSON and CSV, downloaded through signed links."""

from app.orgs.context import tenant_blueprint

bp = tenant_blueprint("exports", __name__, url_prefix="/settings/export")

from app.exports import routes  # noqa: E402,F401
