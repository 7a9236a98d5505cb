"""Signing in through an organization's OpenID Provider, and what it does to accounts.

1. ``begin``: the person is sent to the provider (Authlib keeps the state, nonce and PKCE
   verifier in the session; the organization and where to go after are kept beside them).
2. ``finish``: back from the provider, Authlib exchanges the code and validates the ID token:
   its signature against the provider's keys, issuer, audience, expiry and nonce. Any failure
   is refused with its reason and audited in the organization; nothing is created.
3. The provider's subject decides who this is:
   - a subject linked before signs its person in (while they are still a member);
   - an address that already has an account is never taken over by matching: a link is mailed
     to it, and only opening it joins the account to the subject (``link``);
   - anyone else joins (just-in-time provisioning) with the connection's role, if the provider
     confirmed an address at one of the organization's proven domains.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import requests
from authlib.common.errors import AuthlibBaseError
from flask import current_app, session
from joserfc.errors import JoseError
from sqlalchemy import select

from app.auth import services as accounts
from app.core import audit
from app.core.mail import public_url, send_email
from app.core.security import InvalidToken, hash_password, make_token, read_token
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Membership, Organization, SsoConnection, SsoIdentity, User
from app.models.base import utcnow
from app.plans import quotas
from app.sso import clients, connections, domains

PENDING_KEY = "_sso_pending"
LINK_TOKEN = "sso-link"


class SignInError(ValueError):
    """Why a sign-in through the provider was refused, shown to the person as it is."""


@dataclass(frozen=True)
class Claims:
    """What a validated ID token says about the person."""

    subject: str
    email: str
    email_verified: bool
    name: str


@dataclass(frozen=True)
class Outcome:
    """Where a finished sign-in leads: a person signed in, a link mailed, or a trial's claims."""

    user: User | None = None
    link_sent_to: str | None = None
    trial: Claims | None = None
    next_url: str | None = None


def organization_by_slug(slug: str) -> Organization | None:
    return db.session.scalar(select(Organization).where(Organization.slug == slug.lower()))


def connection_for(org: Organization) -> SsoConnection | None:
    with tenant_context(org.id):
        return connections.connection_of_tenant()


def enabled_connection(org: Organization | None) -> SsoConnection | None:
    """The organization's connection if single sign-on is on there (None otherwise)."""
    connection = connection_for(org) if org is not None else None
    return connection if connection is not None and connection.enabled_at is not None else None


def begin(org: Organization, connection: SsoConnection, next_url: str | None, trial: bool = False):
    """The redirect to the provider's authorization page (SignInError if the provider's discovery
    document cannot be read)."""
    session[PENDING_KEY] = {"org": org.id.hex, "next": next_url, "trial": trial}
    client = clients.client_for(connection)
    try:
        return client.authorize_redirect(public_url("sso.callback", slug=org.slug))
    except (AuthlibBaseError, requests.RequestException, ValueError, KeyError) as exc:
        raise SignInError(
            f"{org.name}'s identity provider could not be used ({_reason(exc)}). Try again later, "
            "or log in with your password if your organization allows it."
        ) from exc


def finish(org: Organization, connection: SsoConnection) -> Outcome:
    """Validate the provider's answer and act on it (the caller signs the person in)."""
    pending = session.pop(PENDING_KEY, None) or {}
    if pending.get("org") != org.id.hex:
        raise SignInError("This sign-in was not started here, or was already used. Start again.")
    claims = _validated_claims(org, connection)
    if pending.get("trial"):
        return Outcome(trial=claims)
    if connection.enabled_at is None:
        raise SignInError(f"Single sign-on is off for {org.name}.")
    with tenant_context(org.id):
        identity = db.session.scalar(
            select(SsoIdentity).where(
                SsoIdentity.issuer == connection.issuer, SsoIdentity.subject == claims.subject
            )
        )
        if identity is not None:
            user = _returning(org, identity)
        else:
            user = _new_person(org, connection, claims)
            if user is None:
                return Outcome(link_sent_to=claims.email)
        audit.record("sso.signed_in", target=user, actor=user, subject=claims.subject)
        db.session.flush()  # as the organization: its rows are written in its context
    return Outcome(user=user, next_url=pending.get("next"))


def _validated_claims(org: Organization, connection: SsoConnection) -> Claims:
    client = clients.client_for(connection)
    try:
        expected = {"iss": {"essential": True, "values": [connection.issuer]}, "sub": {"essential": True}}
        token = client.authorize_access_token(claims_options=expected)
    except (AuthlibBaseError, JoseError, requests.RequestException, ValueError, KeyError) as exc:
        reason = _reason(exc)
        with tenant_context(org.id):
            audit.record("sso.sign_in_failed", target=org, actor=None, reason=reason)
            db.session.flush()  # as the organization: its row-level security checks the entry
        raise SignInError(f"The sign-in through {org.name}'s provider was refused: {reason}.") from exc
    info = token.get("userinfo")
    if not info:
        raise SignInError("The provider sent no ID token, so it did not say who you are.")
    return Claims(
        subject=str(info["sub"]),
        email=accounts.normalize_email(str(info.get("email") or "")),
        email_verified=info.get("email_verified") is True,
        name=str(info.get("name") or "").strip()[:100],
    )


def _reason(exc: Exception) -> str:
    description = getattr(exc, "description", None) or getattr(exc, "error", None)
    if isinstance(exc, requests.RequestException):
        return "no answer from the provider"
    return str(description or exc or type(exc).__name__).strip().rstrip(".")[:200]


def _returning(org: Organization, identity: SsoIdentity) -> User:
    user = db.session.get(User, identity.user_id)
    member = db.session.scalar(select(Membership.id).where(Membership.user_id == identity.user_id))
    if user is None or user.deleted_at is not None or member is None:
        raise SignInError(f"You are no longer a member of {org.name}. Ask one of its admins to invite you.")
    identity.last_signed_in_at = utcnow()
    return user


def _new_person(org: Organization, connection: SsoConnection, claims: Claims) -> User | None:
    """A subject seen for the first time: a mailed link for an existing account (None), or the
    person provisioned."""
    if not claims.email or not claims.email_verified:
        raise SignInError(
            "Your provider did not confirm an email address for you, so no account can be linked."
        )
    existing = accounts.find_user(claims.email)
    if existing is not None:
        _mail_link(org, connection, claims, existing)
        return None
    allowed = domains.verified_domains(org.id)
    if claims.email.rpartition("@")[2] not in allowed:
        where = ", ".join(allowed) if allowed else "no domain yet"
        raise SignInError(
            f"{org.name} lets people join by signing in only with an address at a domain it has proven "
            f"({where}). Ask one of its admins for an invitation."
        )
    _take_seat(org)
    user = User(
        email=claims.email,
        name=claims.name or claims.email.partition("@")[0],
        password_hash=hash_password(secrets.token_urlsafe(32)),  # none the person knows
        email_verified_at=utcnow(),
    )
    db.session.add(user)
    db.session.flush()
    db.session.add(Membership(user_id=user.id, role=connection.default_role))
    _link(connection, claims, user)
    audit.record("sso.provisioned", target=user, actor=user, role=connection.default_role)
    return user


def _take_seat(org: Organization) -> None:
    """SignInError when the organization's plan has no seat for one more member."""
    try:
        quotas.check(org, "members")
    except quotas.QuotaExceeded as exc:
        raise SignInError(f"{org.name} cannot take new members now. {exc}") from exc


def _link(connection: SsoConnection, claims: Claims, user: User) -> SsoIdentity:
    identity = SsoIdentity(
        issuer=connection.issuer,
        subject=claims.subject,
        user_id=user.id,
        email=claims.email,
        last_signed_in_at=utcnow(),
    )
    db.session.add(identity)
    db.session.flush()
    return identity


def _mail_link(org: Organization, connection: SsoConnection, claims: Claims, user: User) -> None:
    token = make_token(
        LINK_TOKEN,
        {
            "o": org.id.hex,
            "u": str(user.id),
            "e": user.email,
            "i": connection.issuer,
            "s": claims.subject,
            "n": claims.name,
        },
    )
    send_email(
        user.email,
        "sso_link",
        name=user.name,
        organization_name=org.name,
        link_url=public_url("sso.link", token=token),
    )
    audit.record("sso.link_requested", target=user, actor=user, subject=claims.subject)
    db.session.flush()


@dataclass(frozen=True)
class LinkRequest:
    org: Organization
    user: User
    claims: Claims
    issuer: str


def read_link(token: str) -> LinkRequest:
    """The link a mailed token stands for; InvalidToken if it is bad, expired or out of date."""
    payload = read_token(LINK_TOKEN, token, current_app.config["SSO_LINK_MAX_AGE"])
    try:
        org = db.session.get(Organization, uuid.UUID(payload["o"]))
        user = db.session.get(User, uuid.UUID(payload["u"]))
    except (KeyError, ValueError) as exc:
        raise InvalidToken() from exc
    if org is None or user is None or user.email != payload.get("e") or user.deleted_at is not None:
        raise InvalidToken()
    name = payload.get("n") or ""
    claims = Claims(subject=payload["s"], email=payload["e"], email_verified=True, name=name)
    return LinkRequest(org, user, claims, payload["i"])


def link(request: LinkRequest) -> User:
    """Join the account to the provider's subject (it proved it holds the address)."""
    org, user, claims = request.org, request.user, request.claims
    connection = connection_for(org)
    if connection is None or connection.enabled_at is None or connection.issuer != request.issuer:
        raise SignInError(f"{org.name}'s single sign-on has changed since this link was sent. Sign in again.")
    with tenant_context(org.id):
        taken = db.session.scalar(
            select(SsoIdentity).where(
                SsoIdentity.issuer == connection.issuer,
                (SsoIdentity.subject == claims.subject) | (SsoIdentity.user_id == user.id),
            )
        )
        if taken is not None:
            raise SignInError("This account or this identity is already linked. Sign in with SSO.")
        member = db.session.scalar(select(Membership.id).where(Membership.user_id == user.id))
        if member is None:
            if user.email.rpartition("@")[2] not in domains.verified_domains(org.id):
                raise SignInError(
                    f"You are not a member of {org.name}. Ask one of its admins for an invitation."
                )
            _take_seat(org)
            db.session.add(Membership(user_id=user.id, role=connection.default_role))
            audit.record("sso.provisioned", target=user, actor=user, role=connection.default_role)
        _link(connection, claims, user)
        audit.record("sso.linked", target=user, actor=user, subject=claims.subject)
        db.session.flush()
    return user
