from flask import Blueprint

from app.orgs.context import tenant_blueprint

#: Pages outside any organization: create one, open an invitation.
bp = Blueprint("orgs", __name__)
#: Pages of one organization, under /<org-slug>/.
org_bp = tenant_blueprint("org", __name__)

from app.orgs import deletion_routes, routes, security_routes, tenant_routes  # noqa: E402,F401
