"""Operator endpoints: liveness and readiness for load balancers and orchestrators."""

from flask import jsonify

from app.health import bp
from app.health.checks import readiness


@bp.get("/healthz")
def healthz():
    """Alive: the process answers. Touches nothing else, so it never flaps with a dependency."""
    response = jsonify(status="ok")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/readyz")
def readyz():
    """Ready: database reachable with the schema at the migration head, Redis reachable."""
    ready, body = readiness()
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response
