"""Labels of an organization: the settings screen where admins manage them."""

from app.orgs.context import tenant_blueprint

bp = tenant_blueprint("labels", __name__, url_prefix="/settings/labels")

from app.labels import routes  # noqa: E402,F401
