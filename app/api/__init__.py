"""The JSON API, ``/api/v1``: projects, issues, comments, labels, states, members and search,
for scripts and integrations, with an organization API key (``app/apikeys``).

The views are thin like the pages': they call the same services, so what a person can do in a
page and what a key can do through the API are checked and recorded the same way. The OpenAPI
document is made from the views (``app.api.spec``) and served with a reference page
(``app.api.docs_routes``).
"""

from flask import Blueprint, request

from app.api import auth, idempotency, limits, problems

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def _authenticate_and_read_the_body():
    auth.authenticate()
    limits.check()
    if request.method in ("POST", "PUT", "PATCH"):
        if not request.is_json:
            raise problems.ApiProblem(415, "Send the body as JSON, with Content-Type: application/json.")
        if request.get_json(silent=True) is None:
            raise problems.ApiProblem(400, "The body is not valid JSON.")


@bp.after_request
def _rate_limit_headers_and_released_keys(response):
    return idempotency.release_failed_claim(limits.add_headers(response))


@bp.errorhandler(problems.ApiProblem)
def _problem(exc: problems.ApiProblem):
    return problems.from_exception(exc)


from app.api import issues, projects  # noqa: E402,F401
