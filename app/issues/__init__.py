from app.orgs.context import tenant_blueprint

bp = tenant_blueprint("issues", __name__)

from app.issues import board_routes, routes, view_routes  # noqa: E402,F401
