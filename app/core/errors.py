"""Error pages and JSON errors.

A client error (4xx) is shown in the whole layout, with the signed-in person's navigation, so
they can go on from it. A server error (5xx), and a client error whose layout fails to render,
extends the layout with ``minimal=True`` and is given nothing that needs the database, so it
renders even when that is down: the request's transaction is rolled back first (a broken
connection leaves it failed) and the signed-in person is not loaded for it.

A database that cannot be reached (restarting, down, a connection cut under a
statement) is answered 503 with ``Retry-After``, not 500: the request did
nothing wrong and will work when the database is back.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.core.database import database_unavailable
from app.extensions import db

log = logging.getLogger(__name__)

TITLES = {
    400: ("Bad request", "The request could not be understood. Check what you sent and try again."),
    403: ("Not allowed", "You do not have permission to do that."),
    404: ("Page not found", "There is nothing at this address. It may have moved or never existed."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    409: ("Changed meanwhile", "Someone changed this while you were editing it. Reload and try again."),
    410: ("Gone", "What was here has been deleted."),
    413: ("Too large", "What was sent is too large for this address. Send less at a time."),
    423: ("Read-only", "This cannot be changed right now."),
    429: ("Too many requests", "You are going a little fast. Wait a moment, then try again."),
    500: ("Something went wrong", "We hit an error on our side and have logged it. Try again in a moment."),
    503: ("Temporarily unavailable", "Worklane is not available right now. Try again in a moment."),
}


def wants_json() -> bool:
    """True for API calls and clients that prefer JSON over HTML."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


#: The media type of an API error (RFC 9457).
PROBLEM_MEDIA_TYPE = "application/problem+json"

#: Seconds a client is asked to wait before trying again after a 503: a restart takes about one.
RETRY_AFTER_SECONDS = 5


def render_error(code: int, description: str | None = None):
    title, default_text = TITLES.get(code, (f"Error {code}", "The request could not be completed."))
    text = description or default_text
    if request.path.startswith("/api/"):
        return problem_response(code, description or text), code
    if wants_json():
        return jsonify(error={"status": code, "title": title, "detail": text}), code
    if code < 500:
        try:
            return render_template("errors/error.html", code=code, title=title, text=text), code
        except Exception:  # the person or their organizations could not be read: the minimal page
            log.warning("error page with navigation failed to render", exc_info=True)
            _discard_transaction()
    _keep_the_person_unloaded()
    try:
        return render_template("errors/error.html", code=code, title=title, text=text, minimal=True), code
    except Exception:  # the template layer itself failed: still answer
        log.exception("error page failed to render")
        return f"<!doctype html><title>{code} {title}</title><h1>{title}</h1>", code


def problem_response(status: int, detail: str | None = None, *, headers=None, errors=None):
    """An API error as RFC 9457 problem details: the API's own refusals (``app.api.problems``)
    and those no API view saw (an unknown path, a method, an outage, a fault) alike. The type
    links the reference's entry on ``PUBLIC_URL``, never on the request's Host."""
    base = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else f"Error {status}"
    problem = {"type": f"{base}/docs/api#problem-{status}", "title": title, "status": status}
    if detail:
        problem["detail"] = detail
    problem["instance"] = request.path
    if errors:
        problem["errors"] = errors
    response = current_app.response_class(json.dumps(problem), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _keep_the_person_unloaded() -> None:
    """The layout's context asks Flask-Login for the signed-in person, which loads them from the
    database if nothing in the request did yet. An error page's minimal header shows nobody,
    so it gets the anonymous user instead of a query that may fail."""
    if "_login_user" not in g:
        g._login_user = current_app.login_manager.anonymous_user()


def _discard_transaction() -> None:
    """Roll back the request's session, whatever state a failure left it in.

    A statement that failed on a broken connection leaves the transaction unusable until it
    is rolled back (SQLAlchemy's PendingRollbackError); with the database gone even the
    rollback may fail, which changes nothing: the connection is already discarded.
    """
    try:
        db.session.rollback()
    except Exception:
        log.warning("rollback failed after a database error", exc_info=True)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        # Werkzeug's own descriptions are technical; ours are for people, but a
        # view that raised abort(4xx, "reason") keeps its reason.
        default = type(exc).description
        description = exc.description if exc.description != default and exc.code != 429 else None
        response = render_error(exc.code, description)
        if exc.code == 405 and exc.valid_methods:
            body, code = response
            return body, code, {"Allow": ", ".join(exc.valid_methods)}
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        return render_error(
            400, "This form has expired or did not come from Worklane. Reload the page and try again."
        )

    @app.errorhandler(StaleDataError)
    def _stale_write(exc: StaleDataError):
        # A versioned row changed between being read and written: nothing was saved.
        db.session.rollback()
        log.info("write refused: the row changed meanwhile", extra={"error": str(exc)})
        return render_error(409)

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError):
        if not database_unavailable(exc):
            raise exc  # a fault, not an outage: Flask logs it and answers 500
        _discard_transaction()
        log.warning("database unavailable: answered 503", extra={"error": str(exc.orig)})
        body, code = render_error(503)
        return body, code, {"Retry-After": str(RETRY_AFTER_SECONDS)}

    @app.errorhandler(InternalServerError)
    def _server_error(exc: InternalServerError):
        # Flask has already logged the original exception with its traceback.
        _discard_transaction()
        return render_error(500)
