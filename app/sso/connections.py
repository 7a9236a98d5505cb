"""An organization's single sign-on settings: its provider connection, turning it on and off,
and enforcing it. Each change is audited; the view commits.

- **Saving** reads the provider at once (``clients.check_provider``) and keeps what it found. A
  connection that is on is never saved broken: the change is refused with the problem, so a typo
  cannot lock members out.
- **Turning on** needs a configuration read without a problem.
- **Enforcing** needs it on, and the owner who enforces it must have signed in through it in
  this session: proof that it lets them, at least, in.
"""

from __future__ import annotations

from sqlalchemy import select

from app.auth import sso_session
from app.core import audit
from app.extensions import db
from app.models import Organization, SsoConnection, User
from app.models.base import utcnow
from app.sso import clients


class SettingsError(ValueError):
    """A refusal shown on the settings page as it is."""


def connection_of_tenant() -> SsoConnection | None:
    """The current organization's connection (None before one is saved)."""
    return db.session.scalar(select(SsoConnection))


def save(
    org: Organization,
    connection: SsoConnection | None,
    actor: User,
    issuer: str,
    client_id: str,
    client_secret: str,
    default_role: str,
) -> SsoConnection:
    """Create or change the connection; returns it, checked against the provider."""
    issuer = clients.normalize_issuer(issuer)
    client_id = client_id.strip()
    if connection is None and not client_secret:
        raise SettingsError("Enter the client secret the provider gave.")
    problem = clients.check_provider(issuer)
    if connection is not None and connection.enabled_at is not None and problem:
        raise SettingsError(f"Not saved, as single sign-on is on and would stop working: {problem}")
    if connection is None:
        connection = SsoConnection(
            tenant_id=org.id, issuer=issuer, client_id=client_id, client_secret=client_secret, version=1
        )
        db.session.add(connection)
        changed = ["issuer", "client_id", "client_secret", "default_role"]
    else:
        given = {"issuer": issuer, "client_id": client_id, "client_secret": client_secret}
        changed = [name for name, value in given.items() if value and value != getattr(connection, name)]
        if changed:
            connection.version += 1
        connection.issuer, connection.client_id = issuer, client_id
        if client_secret:
            connection.client_secret = client_secret
        if default_role != connection.default_role:
            changed.append("default_role")
    connection.default_role = default_role
    _record_check(connection, problem)
    if changed:
        audit.record(
            "sso.configured", target=org, actor=actor, issuer=issuer, client_id=client_id, changed=changed
        )
    return connection


def _record_check(connection: SsoConnection, problem: str | None) -> None:
    connection.checked_at = utcnow()
    connection.checked_version = connection.version
    connection.check_problem = problem


def check(connection: SsoConnection) -> str | None:
    """Read the provider again; returns what is wrong (None: nothing)."""
    problem = clients.check_provider(connection.issuer)
    _record_check(connection, problem)
    return problem


def enable(org: Organization, connection: SsoConnection, actor: User) -> None:
    if not connection.checked:
        raise SettingsError("Check the connection first: it must read the provider without a problem.")
    if connection.enabled_at is None:
        connection.enabled_at = utcnow()
        audit.record("sso.enabled", target=org, actor=actor, issuer=connection.issuer)


def disable(org: Organization, connection: SsoConnection, actor: User) -> None:
    """Turn single sign-on off, and with it its enforcement."""
    if connection.enabled_at is None:
        return
    connection.enabled_at = None
    if org.sso_enforced_at is not None:
        org.sso_enforced_at = None
        audit.record("sso.enforcement_ended", target=org, actor=actor)
    audit.record("sso.disabled", target=org, actor=actor, issuer=connection.issuer)


def set_enforced(org: Organization, connection: SsoConnection | None, actor: User, enforced: bool) -> bool:
    """Enforce single sign-on or stop; returns whether anything changed."""
    if enforced == (org.sso_enforced_at is not None):
        return False
    if enforced:
        if connection is None or connection.enabled_at is None:
            raise SettingsError("Turn single sign-on on first.")
        if not sso_session.signed_in_through(org.id):
            raise SettingsError(
                "Sign in through the provider yourself first (Continue with SSO), so that you know it "
                "lets you in: enforcing it would otherwise lock you out too."
            )
        org.sso_enforced_at = utcnow()
        audit.record("sso.enforced", target=org, actor=actor)
    else:
        org.sso_enforced_at = None
        audit.record("sso.enforcement_ended", target=org, actor=actor)
    return True


def remove(org: Organization, connection: SsoConnection, actor: User) -> None:
    """Remove the connection (and with it single sign-on and its enforcement). The people linked
    to the provider stay linked: the same provider set up again signs them in as before."""
    disable(org, connection, actor)
    db.session.delete(connection)
    audit.record("sso.removed", target=org, actor=actor, issuer=connection.issuer)
