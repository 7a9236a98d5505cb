from app.orgs.context import tenant_blueprint

bp = tenant_blueprint("tasks", __name__, url_prefix="/tasks")

from app.tasks import routes  # noqa: E402,F401
