"""Single sign-on: an organization's OpenID Connect provider, the people it has signed in, and
the email domains the organization has proven it holds.

- ``SsoConnection``: one per organization; the provider's issuer, the client's id and secret
  (encrypted at rest), the role people it provisions get, whether it is on. ``version`` moves
  with every change of the issuer or the client, and names the client the app builds for it.
- ``SsoIdentity``: a person linked to a subject at the organization's provider.
- ``SsoDomain``: a domain an admin added, with the token its DNS TXT record must show.
- ``VerifiedDomain``: a domain one organization proved it holds; global, so no two
  organizations hold the same domain, and "Continue with SSO" finds the organization by a
  person's email address.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.encryption import EncryptedText
from app.core.tenancy import TenantMixin
from app.extensions import db
from app.models.base import UTCDateTime, new_id, utcnow


class SsoConnection(TenantMixin, db.Model):
    """The organization's OpenID Provider and the client the app is registered as there."""

    __tablename__ = "sso_connections"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: The provider's issuer identifier (its discovery document is under it).
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret: Mapped[str] = mapped_column(EncryptedText)
    #: The role of a person who joins by signing in (just-in-time provisioning).
    default_role: Mapped[str] = mapped_column(String(16), default="member")
    #: Moves with each change of issuer, client id or secret.
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: When the provider's discovery document and keys were last read, for which version, and
    #: what was wrong (None: nothing).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_version: Mapped[int | None] = mapped_column(Integer)
    check_problem: Mapped[str | None] = mapped_column(String(500))
    #: When it was turned on; None while it is off.
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def checked(self) -> bool:
        """Whether the current configuration was read from the provider without a problem."""
        return self.checked_version == self.version and self.check_problem is None


class SsoIdentity(TenantMixin, db.Model):
    """A person of Worklane as a subject of the organization's provider."""

    __tablename__ = "sso_identities"
    __table_args__ = (
        UniqueConstraint("tenant_id", "issuer", "subject"),
        UniqueConstraint("tenant_id", "user_id", "issuer"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    #: The address the provider gave when the link was made.
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_signed_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def new_domain_token() -> str:
    return secrets.token_urlsafe(24)


class SsoDomain(TenantMixin, db.Model):
    """An email domain an admin says the organization holds, proven by a DNS TXT record."""

    __tablename__ = "sso_domains"
    __table_args__ = (UniqueConstraint("tenant_id", "domain"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    domain: Mapped[str] = mapped_column(String(253))
    token: Mapped[str] = mapped_column(String(64), default=new_domain_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the record was last looked up, and when it was found (None: not yet).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VerifiedDomain(db.Model):
    """A domain proven by one organization: the global claim (one organization per domain)."""

    __tablename__ = "verified_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
