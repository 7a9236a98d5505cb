from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import deletion_routes, routes, two_factor_routes  # noqa: E402,F401
