"""An operator signs in as a person, to see what they see: for a limited time, with a banner on
every page, and every step in the audit log of the person's organizations.

Starting is a POST with a reason. The operator's own session ends (the session is flushed and
gets a new id) and a new one is the person's, marked with who is behind it and until when
(``SESSION_KEY``). While it lasts:

- every page shows a banner that cannot be hidden, with the way to end it;
- nothing is served from or stored in the page cache (the person's cached pages do not have the
  banner, and pages with it must never reach the person);
- every change (a request that is not a GET) is recorded, as the operator's, in the audit log of
  the organization it is made in, along with what the change records itself;
- the person's credentials and account cannot be changed (password, address, second factor,
  deletion):
  those requests are refused with 403.

It ends when the operator ends it or after ``DURATION``, whichever comes first: the session is
flushed again and the operator signs in as themselves.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from flask import (
    Flask,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import login_user, logout_user

from app.auth.identity import record_in_organizations
from app.auth.services import AUTH_TIME_KEY
from app.auth.sso_session import IMPERSONATION_KEY
from app.core import audit, page_cache
from app.core.database import commit_now
from app.core.tenancy import current_tenant_id
from app.extensions import db
from app.models import User

#: How long an impersonation lasts at most.
DURATION = timedelta(minutes=30)
#: The session key marking an impersonation: the operator's id and name, the end (epoch seconds).
SESSION_KEY = IMPERSONATION_KEY
#: Endpoints that change the person's credentials or account: refused while impersonating.
REFUSED_ENDPOINTS = frozenset(
    {
        "auth.change_password",
        "auth.change_email",
        "auth.update_profile",
        "auth.delete_account",
        "auth.cancel_account_deletion",
        "auth.start_two_factor",
        "auth.two_factor_setup",
        "auth.regenerate_recovery_codes",
        "auth.disable_two_factor",
    }
)
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ImpersonationRefused(ValueError):
    """A refusal shown to the operator as it is."""


def current() -> dict | None:
    """This session's impersonation (operator id and name, person's name, end), if any."""
    return session.get(SESSION_KEY) if has_request_context() else None


def _record_everywhere(action: str, operator_id, person: User, **data) -> None:
    operator = db.session.get(User, uuid.UUID(str(operator_id)))
    record_in_organizations(person, action, actor=operator, person=person.email, **data)


def start(operator: User, person: User, reason: str, is_operator) -> None:
    """Record the start in the person's organizations (committed with the request) and make this
    session theirs."""
    reason = (reason or "").strip()
    if not reason:
        raise ImpersonationRefused("Say why: it is recorded in the person's organizations.")
    if person.id == operator.id or person.deleted_at is not None or is_operator(person):
        raise ImpersonationRefused("You cannot sign in as this account.")
    operator_id, operator_name = operator.id, operator.name
    _record_everywhere("impersonation.started", operator_id, person, reason=reason[:500])
    logout_user()
    current_app.session_interface.regenerate(session)
    session.clear()
    login_user(person)
    session[AUTH_TIME_KEY] = int(time.time())
    until = int(time.time() + DURATION.total_seconds())
    session[SESSION_KEY] = {
        "operator_id": str(operator_id),
        "operator_name": operator_name,
        "person_name": person.name,
        "until": until,
        "until_text": time.strftime("%H:%M", time.gmtime(until)),
    }


def end(person: User | None, why: str = "impersonation.ended") -> None:
    """Record the end in the person's organizations (committed with the request) and flush the session."""
    info = current()
    if info is not None and person is not None:
        _record_everywhere(why, info["operator_id"], person)
    logout_user()
    current_app.session_interface.regenerate(session)
    session.clear()


def register_impersonation(app: Flask) -> None:
    """The checks every request of an impersonation goes through, and the banner's values."""

    @app.before_request
    def _during_impersonation():
        current = session._get_current_object()
        # Only a signed-in session can be one; asking any other would mark it read (Vary: Cookie).
        if not current.logged_in:
            return None
        info = current.get(SESSION_KEY)
        if info is None:
            return None
        from flask_login import current_user

        if time.time() >= info["until"]:
            end(
                current_user._get_current_object() if current_user.is_authenticated else None,
                "impersonation.expired",
            )
            commit_now("answered here, before any view: the request's own commit does not run")
            flash("The time to act as someone else is over. Sign in as yourself.", "info")
            return redirect(url_for("auth.login"))
        g.impersonation = info
        page_cache.bypass()
        if request.method in _SAFE_METHODS:
            return None
        if request.endpoint in REFUSED_ENDPOINTS:
            abort(
                403,
                "Not while signed in as someone else: their credentials and account are theirs to change.",
            )
        operator = db.session.get(User, uuid.UUID(info["operator_id"]))
        audit.acting_for(operator)  # what the change records itself is the operator's too
        if current_tenant_id() is not None and request.endpoint != "operators.end_impersonation":
            audit.record(
                "impersonation.action",
                actor=operator,
                method=request.method,
                path=request.path,
                person=current_user.email if current_user.is_authenticated else None,
            )
        return None

    @app.context_processor
    def _impersonation_banner():
        return {"impersonation": g.get("impersonation")}
