"""Who calls the API: the organization API key in ``Authorization: Bearer``.

Before each API view the key is found by its hash (in any organization), checked (not revoked,
not expired, its maker still a member), and the request then runs in the key's organization as
its maker, within the maker's current role: ``needs(scope)`` on a view also asks the key's
scopes. The key's last use (time and address) is written at most once a minute.
"""

from __future__ import annotations

from datetime import timedelta
from functools import wraps

from flask import g, request

from app.api import limits
from app.api.problems import ApiProblem
from app.apikeys import scopes as api_scopes
from app.apikeys import services as api_keys
from app.auth.identity import account_of
from app.core.database import write_from_the_start
from app.core.permissions import role_can
from app.core.tenancy import set_request_tenant
from app.extensions import db
from app.models import ApiKey, User
from app.models.base import utcnow

#: How stale a key's "last used" may get before a request writes it again.
LAST_USE_EVERY = timedelta(minutes=1)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="Worklane API"'}


def _refuse(detail: str, error: str = "invalid_token"):
    raise ApiProblem(
        401, detail, headers={"WWW-Authenticate": f'Bearer realm="Worklane API", error="{error}"'}
    )


def authenticate() -> None:
    """Find the request's key and enter its organization as its maker, or answer 401/403/410/423
    (429 for an address that sent too many keys that did not work)."""
    address = request.remote_addr or ""
    if limits.too_many_refused_keys(address):
        raise ApiProblem(
            429,
            "Too many requests with keys that do not work came from this address: wait a minute.",
            headers={"Retry-After": "60"},
        )
    try:
        _authenticate()
    except ApiProblem as problem:
        if problem.status == 401:
            limits.count_refused_key(address)
        raise


def _authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        raise ApiProblem(401, "Send an API key: Authorization: Bearer wlk_…", headers=_CHALLENGE)
    if scheme.lower() != "bearer" or not token:
        _refuse("Send the key as a bearer token: Authorization: Bearer wlk_…", "invalid_request")
    if not api_keys.well_formed(token):
        _refuse("That is not a Worklane API key (they start wlk_ and end with a checksum).")
    key = api_keys.find(token)
    if key is None:
        _refuse("No such API key.")
    now = utcnow()
    if key.revoked_at is not None:
        _refuse("This API key has been revoked.")
    if key.expires_at <= now:
        _refuse(f"This API key expired on {key.expires_at:%Y-%m-%d}.")
    account = account_of(key.created_by_id) if key.created_by_id else None
    access = next((o for o in account.organizations if o.org_id == key.tenant_id), None) if account else None
    if access is None:
        _refuse("The person who made this API key is no longer a member of its organization.")
    if access.suspended_at is not None:
        raise ApiProblem(403, f"{access.name} is suspended by the operators of this service.")
    if access.deletion_due_at is not None:
        if access.deletion_due_at <= now:
            raise ApiProblem(410, f"{access.name} has been deleted.")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            raise ApiProblem(423, f"{access.name} is to be deleted and is read-only until then.")
    set_request_tenant(key.tenant_id)
    g.access, g.account, g.api_key = access, account, key
    g.audit_via = f"API key {key.name} (…{key.last_four})"
    _note_use(key, now)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        maker()  # the signed-in person of this request, whom every change and audit entry names


def _note_use(key: ApiKey, now) -> None:
    address = request.remote_addr
    if (
        key.last_used_at is not None
        and now - key.last_used_at < LAST_USE_EVERY
        and key.last_used_ip == address
    ):
        return
    write_from_the_start()  # a GET that writes: a writer from here on, never run twice
    key = db.session.get(ApiKey, (key.tenant_id, key.id))
    key.last_used_at, key.last_used_ip = now, address
    g.api_key = key


def maker() -> User:
    """The key's maker, as whom the request acts (loaded on first use): Flask-Login's
    ``current_user`` for the rest of the request."""
    if "_login_user" not in g or g._login_user is None or getattr(g._login_user, "is_anonymous", False):
        g._login_user = db.session.get(User, g.api_key.created_by_id)
    return g._login_user


def needs(scope: str):
    """View decorator: 403 unless the key holds ``scope`` and its maker's role allows it."""
    permission = api_scopes.permission_for(scope)

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            key = g.api_key
            if not api_scopes.grants(key.scope_list, scope):
                raise ApiProblem(403, f"This key does not hold the scope {scope}.")
            if not role_can(g.access.role, permission):
                raise ApiProblem(403, f"The key's maker, as {g.access.role}, may not do this.")
            return view(*args, **kwargs)

        wrapped.api_scope = scope
        return wrapped

    return decorator
