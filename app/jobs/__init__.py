"""The system check: an operator's proof that a worker reaches the database and reports back.

It belongs to operators (``OPERATOR_EMAILS``): started from the operator console, its page
shows the worker's host and pid, and everyone else gets 404, as from every operator page.
"""

from flask import Blueprint

bp = Blueprint("jobs", __name__, url_prefix="/operators/system-check")

from app.jobs import routes  # noqa: E402,F401
