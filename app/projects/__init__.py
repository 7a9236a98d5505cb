from app.orgs.context import tenant_blueprint

bp = tenant_blueprint("projects", __name__, url_prefix="/projects")

from app.projects import routes, state_routes  # noqa: E402,F401
