"""Background work followed on a page: a live progress bar, then the result or the error.

An organization's tasks (imports, exports, reports) are under ``/<org>/tasks``. The system's
own work, the operators' system check (a worker reaches the database and reports back),
is under ``/operators/system-check``: for operators (``OPERATOR_EMAILS``) only, everyone
else gets 404, as from every operator page. Both show the same page and status panel.
"""

from flask import Blueprint

from app.orgs.context import tenant_blueprint

bp = tenant_blueprint("tasks", __name__, url_prefix="/tasks")
system_bp = Blueprint("system_check", __name__, url_prefix="/operators/system-check")

from app.tasks import routes  # noqa: E402,F401
