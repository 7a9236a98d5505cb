from app.orgs.context import tenant_blueprint

bp = tenant_blueprint("reports", __name__)

from app.reports import routes  # noqa: E402,F401
