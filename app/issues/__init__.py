from app.orgs.context import tenant_blueprint

bp = tenant_blueprint("issues", __name__)

from app.issues import badges  # noqa: E402

for _piece in (badges.state_badge, badges.priority_icon, badges.label_chips, badges.avatars):
    bp.add_app_template_global(_piece)

from app.issues import (  # noqa: E402,F401
    board_routes,
    field_routes,
    list_routes,
    palette_routes,
    preview_routes,
    routes,
    view_routes,
)
