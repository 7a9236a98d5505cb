"""An organization's audit log: the page where owners and admins read it, its exports, the
verification of its hash chain, and the jobs that sign checkpoints and apply the retention."""

from app.orgs.context import tenant_blueprint

bp = tenant_blueprint("audit", __name__, url_prefix="/settings")

from app.audit import routes  # noqa: E402,F401
