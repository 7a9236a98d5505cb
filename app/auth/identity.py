"""Who is asking: the signed-in person and their organizations, without a query per request.

Every page needs the same few facts about the person in the session: that the login is
still valid (the session epoch matches), their name, and their organizations with their
role in each. They are cached together per person (``account_of``), keyed by a per-person
version that moves when any of them changes:

- a change to the ``User`` row (name, email, password, session epoch);
- a membership added, removed or given another role;
- an organization renamed.

Each is caught from the data change itself (``app/core/cache_topics.py``): ``User`` and ``Membership``
declare the account as a topic, and the organization's members are found here.

The cached value also expires after ``ACCOUNT_TIMEOUT`` seconds, which bounds how long a
lost version bump (Redis unreachable at commit) could keep a stale answer.

Views that need the ORM user still use Flask-Login's ``current_user``, loaded on first use.
"""

from __future__ import annotations

import functools
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import g, session
from flask_login import user_logged_in, user_logged_out
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.core import audit, cache, cache_topics, page_cache
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Membership, Organization, TwoFactor, User

#: Seconds a cached account is trusted at most, even if no change was signalled.
ACCOUNT_TIMEOUT = 60
_TOPIC = "account"

#: A person's id from the text of their login identity (``<id>:<epoch>``), made once per process and
#: id: each of their requests reads it twice (with the session, then the account), and ``uuid.UUID``
#: is Python code.
user_id_from = functools.lru_cache(maxsize=4096)(uuid.UUID)


@dataclass(frozen=True)
class MembershipSummary:
    """One of a user's organizations, for the switcher (read across tenants on purpose)."""

    org_id: uuid.UUID
    slug: str
    name: str
    role: str
    #: When the organization starts refusing members without two-factor (None: it never does).
    two_factor_deadline: datetime | None = None
    #: When the organization is deleted, while an owner's request to delete it waits (it is
    #: read-only meanwhile); None otherwise, and for accounts cached before it was known.
    deletion_due_at: datetime | None = None
    #: When an operator suspended the organization (its pages are closed to members), or None.
    suspended_at: datetime | None = None
    #: Whether members reach it only after signing in through its provider (``app/sso/``).
    sso_enforced: bool = False


def organizations_of(user_id: uuid.UUID) -> tuple[MembershipSummary, ...]:
    """Every organization the user belongs to (cached with their account)."""
    account = account_of(user_id)
    return account.organizations if account is not None else ()


def own_organizations(user_id: uuid.UUID, membership_column) -> Select:
    """The user's organizations by name: id, slug, name and ``membership_column`` of their
    membership in each. It reads across tenants: run it inside ``unscoped`` (a user may always
    list their own memberships)."""
    return (
        select(Organization.id, Organization.slug, Organization.name, membership_column)
        .join(Membership, Membership.tenant_id == Organization.id)
        .where(Membership.user_id == user_id)
        .order_by(func.lower(Organization.name))
    )


def record_in_organizations(person: User, action: str, /, actor: User | None = None, **data) -> None:
    """Record ``action`` about ``person`` in the audit log of each organization they belong to
    (each has its own log), as ``actor`` (default: the person). Their organizations come from
    their cached account; the logs are taken in a fixed order, so two such records never wait
    on each other in a circle."""
    for org_id in sorted(access.org_id for access in organizations_of(person.id)):
        with tenant_context(org_id):
            audit.record(action, target=person, actor=actor or person, **data)
            db.session.flush()  # as the organization: its row-level security checks the entry


def memberships_of(user_id: uuid.UUID) -> list[MembershipSummary]:
    """Every organization the user belongs to, from the database (a user may always list
    their own memberships, across organizations)."""
    query = own_organizations(user_id, Membership.role).add_columns(
        Organization.two_factor_required_at,
        Organization.two_factor_grace_days,
        Organization.deletion_due_at,
        Organization.suspended_at,
        Organization.sso_enforced_at,
    )
    with unscoped("a user's own memberships, for the organization switcher"):
        rows = db.session.execute(query).all()
    return [
        MembershipSummary(
            row.id,
            row.slug,
            row.name,
            row.role,
            row.two_factor_required_at + timedelta(days=row.two_factor_grace_days)
            if row.two_factor_required_at
            else None,
            row.deletion_due_at,
            row.suspended_at,
            row.sso_enforced_at is not None,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Account:
    user_id: uuid.UUID
    name: str
    session_epoch: str
    organizations: tuple[MembershipSummary, ...]
    #: Their IANA time zone (``app.core.dates``); the default stands for accounts cached before it.
    time_zone: str = "UTC"
    #: Whether they sign in with a second factor (organizations may require it).
    two_factor: bool = False

    def access_to(self, slug: str) -> MembershipSummary | None:
        return next((o for o in self.organizations if o.slug == slug), None)


def account_of(user_id: uuid.UUID) -> Account | None:
    """The person's cached account (None if there is no such user)."""
    return cache.memoize_for_user(user_id, _TOPIC, "account", lambda: _load_account(user_id), ACCOUNT_TIMEOUT)


def _load_account(user_id: uuid.UUID) -> Account | None:
    row = db.session.execute(
        select(User, TwoFactor.confirmed_at)
        .outerjoin(TwoFactor, TwoFactor.user_id == User.id)
        .where(User.id == user_id)
    ).first()
    if row is None:
        return None
    user, two_factor_since = row
    organizations = tuple(memberships_of(user.id))
    return Account(
        user.id, user.name, user.session_epoch, organizations, user.time_zone, two_factor_since is not None
    )


def signed_in() -> Account | None:
    """The account of this request's session, if its login is still valid (once per request)."""
    request_globals = g._get_current_object()  # each read through the proxy costs about 1 µs
    if "account" not in request_globals:
        request_globals.account = _session_account()
    return request_globals.account


def _session_account() -> Account | None:
    identity = session.get("_user_id")
    if not identity:
        return None
    user_id, _, epoch = identity.partition(":")
    try:
        user_id = user_id_from(user_id)
    except ValueError:
        return None
    account = account_of(user_id)
    if account is None or not hmac.compare_digest(account.session_epoch, epoch):
        return None
    return account


def _forget_request_account(*_args, **_kwargs) -> None:
    g.pop("account", None)


def signed_in_id() -> uuid.UUID | None:
    """The id of this request's signed-in person, from the cached account: what a view that
    only needs the id reads instead of ``current_user.id``, which loads the person's row."""
    account = signed_in()
    return account.user_id if account is not None else None


# Cached pages are per person: the cache asks here who is viewing.
page_cache.viewer_from(signed_in_id)

# Logging in or out in this request changes who is asking.
user_logged_in.connect(_forget_request_account)
user_logged_out.connect(_forget_request_account)


@cache_topics.also_expires(User)
def _name_in_organizations(session: Session, user: User, changed) -> list[str]:
    """Each of the person's organizations shows their name in cached lists, and links mentions
    of their email's first part to them on issue pages: expire those."""
    if changed is not None and not changed & {"name", "email"}:
        return []
    return [cache.topic_key_in(access.org_id, "members") for access in memberships_of(user.id)]


@cache_topics.also_expires(Organization)
def _members_accounts(session: Session, org: Organization, changed) -> list[str]:
    """Every member's switcher shows the organization's name and address."""
    # Named explicitly: the change may be made unscoped (by the system), where no tenant applies.
    with tenant_context(org.id):
        member_ids = session.scalars(select(Membership.user_id).where(Membership.tenant_id == org.id)).all()
    return [cache.user_topic_key(user_id, _TOPIC) for user_id in member_ids]
