"""The operator console (``/operators/``) and Prometheus metrics (``/metrics``).

Operators run the system rather than an organization: they are named by ``OPERATOR_EMAILS``
(tenant owners and admins are not operators), and everyone else gets 404. ``/metrics``
answers only a bearer ``METRICS_TOKEN``, and 404 when none is configured.
"""

from flask import Blueprint

bp = Blueprint("operators", __name__)

from app.operators import impersonation_routes, plan_routes, routes, tenant_routes  # noqa: E402,F401
