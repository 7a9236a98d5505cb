"""Rate limits: who a limit counts (its key), the limits' decorators, and the 429 page.

Limits are declared on the views where abuse is cheap (login, sign-up, password reset, the
account page's current-password checks, invitations) with the numbers in the config
(``*_LIMIT*``). They are counted in Redis, shared by every web process; while that Redis is
unreachable each process counts in its own memory (``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``)
and goes back to Redis once it answers again.

The source address is ``request.remote_addr``: with ``PROXY_COUNT`` set, ProxyFix has put
the client's address there from the ``X-Forwarded-For`` the trusted proxies wrote; without
it, a forwarded header is ignored.
"""

from __future__ import annotations

import functools
import math
import time

from flask import Flask, current_app, request
from flask.globals import request_ctx
from flask_limiter import RateLimitExceeded
from flask_login import current_user

from app.core.tenancy import current_tenant_id
from app.extensions import limiter


def config_limit(name: str):
    """The limit named ``name`` in the config, read per request (tests and deploys change it)."""
    return lambda: current_app.config[name]


def source() -> str:
    """The client's address (as the trusted proxies report it)."""
    return "ip:" + (request.remote_addr or "unknown")


def typed_account() -> str:
    """The account a form names: the address typed in its ``email`` field."""
    return "account:" + request.form.get("email", "").strip().lower()[:254]


def typed_account_from_source() -> str:
    """The account a form names, from this address: a guesser here is blocked, the owner elsewhere is not."""
    return f"{typed_account()}|{source()}"


def signed_in_user() -> str:
    """The signed-in person (their limits follow them across organizations and addresses)."""
    return f"user:{current_user.get_id() or 'anonymous'}"


def current_organization() -> str:
    """The organization of a tenant page (all its members' invitations together)."""
    tenant_id = current_tenant_id()
    return f"org:{tenant_id or 'none'}"


def invitation_in_path() -> str:
    """The invitation a resend names."""
    return f"invitation:{request.view_args.get('invitation_id')}"


def failed_login(response) -> bool:
    """A login that did not sign anyone in (a successful one redirects): only these are counted."""
    return response.status_code != 303


def login_limits(view):
    """Login: per address, per account from one address (tight), per account (looser).

    Only failed attempts count, so people signing in many times from one office address are
    never blocked, while guesses are.
    """
    view = limiter.limit(
        config_limit("LOGIN_LIMIT_PER_IP"), key_func=source, methods=["POST"], deduct_when=failed_login
    )(view)
    view = limiter.limit(
        config_limit("LOGIN_LIMIT_PER_ACCOUNT_AND_IP"),
        key_func=typed_account_from_source,
        methods=["POST"],
        deduct_when=failed_login,
    )(view)
    return limiter.limit(
        config_limit("LOGIN_LIMIT_PER_ACCOUNT"),
        key_func=typed_account,
        methods=["POST"],
        deduct_when=failed_login,
    )(view)


def signup_limits(view):
    """Sign-up: per address, and per email address (a sign-up for a taken address mails its owner)."""
    view = limiter.limit(config_limit("SIGNUP_LIMIT_PER_IP"), key_func=source, methods=["POST"])(view)
    return limiter.limit(config_limit("SIGNUP_LIMIT_PER_ACCOUNT"), key_func=typed_account, methods=["POST"])(
        view
    )


#: One count for every form that checks the signed-in person's current password.
current_password_limit = limiter.shared_limit(
    config_limit("CURRENT_PASSWORD_LIMIT"), scope="current-password", key_func=signed_in_user
)

#: One count per person, and one per organization, for every invitation mail (new or resent).
_per_person = limiter.shared_limit(
    config_limit("INVITATION_LIMIT_PER_USER"), scope="invitations", key_func=signed_in_user
)
_per_organization = limiter.shared_limit(
    config_limit("INVITATION_LIMIT_PER_ORGANIZATION"), scope="org-invitations", key_func=current_organization
)


def invitation_limit(view):
    return _per_organization(_per_person(view))


#: Resends of one invitation.
resend_limit = limiter.limit(config_limit("INVITATION_RESEND_LIMIT"), key_func=invitation_in_path)


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    if seconds < 90 * 60:
        minutes = math.ceil(seconds / 60)
        return f"{minutes} minutes"
    hours = math.ceil(seconds / 3600)
    return f"about {hours} hour{'s' if hours != 1 else ''}"


def retry_after_seconds() -> int:
    """Seconds until every limit this request broke lets it through again (at least 1)."""
    now = time.time()
    breached = [limit for limit in limiter.current_limits if limit.breached] or [
        limit for limit in [limiter.current_limit] if limit is not None
    ]
    try:
        waits = [limit.reset_at - now for limit in breached]
    except Exception:  # the store went away between the check and this page
        waits = []
    return max(1, math.ceil(max(waits, default=60)))


def limits_on_every_request() -> bool:
    """Whether any limit applies to requests whatever their view: application-wide, default,
    meta, per-blueprint or in-memory fallback limits (Worklane declares none of these)."""
    manager = limiter.limit_manager
    return any(
        (
            manager._application_limits,
            manager._default_limits,
            manager._blueprint_limits,
            limiter._meta_limits,
            limiter._in_memory_fallback,
        )
    )


#: Where Flask-Limiter keeps a request's state (its ``Limiter.context``), on the request context.
_LIMITER_STATE = "_limiter_request_context"


def _limiter_ran() -> bool:
    """Whether a limit was checked in this request (Flask-Limiter made its per-request state)."""
    return hasattr(request_ctx._get_current_object(), _LIMITER_STATE)


def _run_only_where_limits_ran(hooks: list) -> None:
    """Replace Flask-Limiter's own hooks in ``hooks`` by ones that run only if ``_limiter_ran``."""
    for index, hook in enumerate(hooks):
        if isinstance(hook, functools.partial):  # after_request: partial(Limiter.__inject_headers, limiter)
            owner = hook.args[0] if hook.args else None
        else:  # teardown_request: a bound method of the limiter
            owner = getattr(hook, "__self__", None)
        if owner is not limiter:
            continue

        def only_where_limits_ran(value=None, hook=hook):
            if _limiter_ran():
                return hook(value)
            return value

        hooks[index] = only_where_limits_ran


def register_rate_limits(app: Flask) -> None:
    from app.core.errors import render_error

    # Flask-Limiter checks every request before its view for the limits that apply whatever the
    # view. With none declared, that check can find nothing: it is skipped. The limits declared
    # on views are checked by their decorators, as before.
    check = limiter._check_request_limit
    functions = app.before_request_funcs.setdefault(None, [])
    if check in functions:

        def _check_app_wide_limits() -> None:
            if limits_on_every_request():
                check()

        functions[functions.index(check)] = _check_app_wide_limits

    # After the view, Flask-Limiter deducts the limits that count only some answers (failed
    # logins) and adds the X-RateLimit-* headers; at teardown it clears its per-request state.
    # Both work from that state, which exists only once a limit was checked in this request:
    # on every other request (most of them) there is nothing to do.
    _run_only_where_limits_ran(app.after_request_funcs.setdefault(None, []))
    _run_only_where_limits_ran(app.teardown_request_funcs.setdefault(None, []))

    @app.errorhandler(RateLimitExceeded)
    def _too_many(exc: RateLimitExceeded):
        seconds = retry_after_seconds()
        body, code = render_error(429, f"Too many attempts. Try again in {_wait_text(seconds)}.")
        return body, code, {"Retry-After": str(seconds)}
