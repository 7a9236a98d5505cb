"""Organization API keys: made by admins, shown once, stored as a hash, revoked at will.

A key reads ``wlk_`` + its organization's id (22 base62 characters) + 32 random base62 characters
+ a 6-character checksum (CRC32 of what comes before it, base62): the prefix lets secret scanners
recognise a leaked key, the checksum lets them (and us) tell a key from a random string without a
lookup, and the organization's id lets the key be found inside its organization, as every other
read is (one shard on a distributed database, never all of them). Only the key's SHA-256 and its
last four characters are stored.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid
import zlib
from datetime import timedelta

from sqlalchemy import select

from app.apikeys import scopes as api_scopes
from app.core import audit
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import ApiKey, Organization
from app.models.base import utcnow

PREFIX = "wlk_"
_ALPHABET = string.digits + string.ascii_letters
_ORGANIZATION_LENGTH = 22  # a UUID's 128 bits in base62
_RANDOM_LENGTH = 32
_BODY_LENGTH = _ORGANIZATION_LENGTH + _RANDOM_LENGTH
_CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + _BODY_LENGTH + _CHECKSUM_LENGTH
#: The lifetimes offered when a key is made, in days.
LIFETIMES = (7, 30, 90, 365)
#: The longest an organization may let its keys live, in days.
MAX_DAYS_LIMIT = 730


class KeyProblem(ValueError):
    """A key that cannot be made as asked: the message says why."""


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_LENGTH)


def new_token(organization_id: uuid.UUID) -> str:
    body = _base62(organization_id.int, _ORGANIZATION_LENGTH)
    body += "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return PREFIX + body + _checksum(body)


def organization_of(token: str) -> uuid.UUID | None:
    """The organization a well-formed token names (None: no UUID is written there)."""
    number = 0
    for char in token[len(PREFIX) : len(PREFIX) + _ORGANIZATION_LENGTH]:
        number = number * 62 + _ALPHABET.index(char)
    return uuid.UUID(int=number) if number < 1 << 128 else None


def well_formed(token: str) -> bool:
    """Whether ``token`` has the shape of a key and its checksum holds (no lookup)."""
    if len(token) != KEY_LENGTH or not token.startswith(PREFIX):
        return False
    rest = token[len(PREFIX) :]
    if any(char not in _ALPHABET for char in rest):
        return False
    return _checksum(rest[:_BODY_LENGTH]) == rest[_BODY_LENGTH:]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find(token: str) -> ApiKey | None:
    """The key a well-formed token is, read in the organization it names (None: no such key)."""
    organization_id = organization_of(token)
    if organization_id is None:
        return None
    with tenant_context(organization_id):
        return db.session.scalar(select(ApiKey).where(ApiKey.token_hash == token_hash(token)))


def keys_of_tenant() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))


def create(organization: Organization, actor, name: str, scopes: list[str], days: int) -> tuple[ApiKey, str]:
    """Make a key; returns it and its token, which is never shown again."""
    name = (name or "").strip()
    if not name:
        raise KeyProblem("Give the key a name that says what uses it.")
    if not api_scopes.valid(scopes):
        raise KeyProblem("Choose at least one scope.")
    if days < 1 or days > organization.api_key_max_days:
        raise KeyProblem(f"Keys of {organization.name} live at most {organization.api_key_max_days} days.")
    token = new_token(organization.id)
    key = ApiKey(
        name=name[:100],
        scopes=" ".join(sorted(set(scopes))),
        token_hash=token_hash(token),
        last_four=token[-4:],
        created_by_id=actor.id,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(key)
    db.session.flush()
    audit.record("api_key.created", key, scopes=key.scopes, expires_at=key.expires_at.isoformat())
    return key, token


def revoke(key: ApiKey, actor=None, reason: str | None = None) -> None:
    if key.revoked_at is not None:
        return
    key.revoked_at = utcnow()
    key.revoked_by_id = getattr(actor, "id", None)
    audit.record("api_key.revoked", key, actor=actor, reason=reason)


def revoke_keys_made_by(user_id) -> int:
    """Revoke the keys someone made in the current organization (they left or were removed)."""
    made = db.session.scalars(
        select(ApiKey).where(ApiKey.created_by_id == user_id, ApiKey.revoked_at.is_(None))
    ).all()
    for key in made:
        revoke(key, reason="its maker is no longer a member")
    return len(made)


def set_max_days(organization: Organization, days: int) -> None:
    if not 1 <= days <= MAX_DAYS_LIMIT:
        raise KeyProblem(f"Choose between 1 and {MAX_DAYS_LIMIT} days.")
    if days != organization.api_key_max_days:
        before = organization.api_key_max_days
        organization.api_key_max_days = days
        audit.record("api_key.max_days_changed", organization, before=before, after=days)
