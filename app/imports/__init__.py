from app.orgs.context import tenant_blueprint

bp = tenant_blueprint("imports", __name__)

from app.imports import routes  # noqa: E402,F401
