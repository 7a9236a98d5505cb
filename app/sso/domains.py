"""The email domains an organization proves it holds, by a DNS TXT record.

An admin adds a domain; the settings page shows the record to publish at
``_worklane-verification.<domain>``; checking it looks the record up (dnspython, through
``DNS_NAMESERVERS`` or the system's resolver). A proven domain is claimed globally
(``VerifiedDomain``): no other organization may prove it while one holds it. Proven domains
limit who joins by signing in (just-in-time provisioning) and let "Continue with SSO" find the
organization from an email address.
"""

from __future__ import annotations

import dns.exception
import dns.resolver
import idna
from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.core import audit
from app.extensions import db
from app.models import Organization, SsoDomain, User, VerifiedDomain
from app.models.base import utcnow

RECORD_PREFIX = "_worklane-verification"
VALUE_PREFIX = "worklane-domain-verification="
#: Seconds a lookup may take in all.
LOOKUP_SECONDS = 5


class DomainError(ValueError):
    """A refusal shown on the settings page as it is."""


def normalize(value: str) -> str:
    """The domain as stored: lower-case, in its ASCII (IDNA) form; DomainError if it is not one."""
    value = value.strip().rstrip(".").lower()
    if "@" in value:
        value = value.rpartition("@")[2]
    try:
        ascii_name = idna.encode(value, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise DomainError(f"{value or 'That'} is not a domain name.") from exc
    if "." not in ascii_name or len(ascii_name) > 253:
        raise DomainError(f"{value} is not a domain name like example.com.")
    return ascii_name


def record_name(domain: str) -> str:
    return f"{RECORD_PREFIX}.{domain}"


def record_value(row: SsoDomain) -> str:
    return VALUE_PREFIX + row.token


def domains_of_tenant() -> list[SsoDomain]:
    return list(db.session.scalars(select(SsoDomain).order_by(SsoDomain.domain)))


def add(org: Organization, actor: User, value: str) -> SsoDomain:
    domain = normalize(value)
    if db.session.scalar(select(SsoDomain.id).where(SsoDomain.domain == domain)) is not None:
        raise DomainError(f"{domain} is already on the list.")
    row = SsoDomain(tenant_id=org.id, domain=domain)
    db.session.add(row)
    audit.record("sso.domain_added", target=org, actor=actor, domain=domain)
    return row


def _txt_values(name: str) -> list[str]:
    """The TXT strings published at ``name``; DomainError when the lookup itself fails."""
    servers = current_app.config["DNS_NAMESERVERS"]
    try:
        resolver = dns.resolver.Resolver(configure=not servers)
    except dns.resolver.NoResolverConfiguration as exc:
        raise DomainError("This server has no DNS resolver configured; ask the operators.") from exc
    if servers:
        resolver.nameservers = []
        for server in servers:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            resolver.nameservers.append(host)
            if port:
                resolver.nameserver_ports[host] = int(port)
    resolver.lifetime = LOOKUP_SECONDS
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        failure = type(exc).__name__
        raise DomainError(f"The DNS lookup of {name} failed ({failure}); try again later.") from exc
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def verify(org: Organization, actor: User, row: SsoDomain) -> None:
    """Look the domain's record up; on finding it, claim the domain for the organization."""
    row.checked_at = utcnow()
    if row.verified_at is not None:
        return
    name = record_name(row.domain)
    if record_value(row) not in _txt_values(name):
        raise DomainError(
            f"No TXT record {record_value(row)} at {name} yet. DNS changes can take a while to show."
        )
    try:
        with db.session.begin_nested():
            db.session.add(VerifiedDomain(domain=row.domain, org_id=org.id))
    except IntegrityError as exc:
        raise DomainError(f"{row.domain} is already proven by another organization.") from exc
    row.verified_at = utcnow()
    audit.record("sso.domain_verified", target=org, actor=actor, domain=row.domain)


def remove(org: Organization, actor: User, row: SsoDomain) -> None:
    db.session.execute(
        delete(VerifiedDomain).where(VerifiedDomain.domain == row.domain, VerifiedDomain.org_id == org.id)
    )
    db.session.delete(row)
    audit.record("sso.domain_removed", target=org, actor=actor, domain=row.domain)


def verified_domains(org_id) -> list[str]:
    """The domains the organization has proven."""
    query = select(VerifiedDomain.domain).where(VerifiedDomain.org_id == org_id)
    return list(db.session.scalars(query.order_by(VerifiedDomain.domain)))


def organization_for_email(email: str) -> Organization | None:
    """The organization that proved the domain of ``email`` (None if none did)."""
    domain = email.strip().lower().rpartition("@")[2]
    row = db.session.get(VerifiedDomain, domain)
    return db.session.get(Organization, row.org_id) if row is not None else None
