"""Demo data for `make run`: an organization with a few people, so a newcomer sees a living product."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Organization, User
from app.models.base import utcnow
from app.orgs.services import create_organization
from app.security import hash_password
from app.tenancy import tenant_context

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "worklane-demo"
DEMO_SLUG = "acme"
TEAM = [
    ("Grace Hopper", "grace@example.com", "admin"),
    ("Alan Turing", "alan@example.com", "member"),
    ("Katherine Johnson", "katherine@example.com", "member"),
    ("Edsger Dijkstra", "edsger@example.com", "viewer"),
]


def _user(name: str, email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(
            email=email, name=name, password_hash=hash_password(DEMO_PASSWORD), email_verified_at=utcnow()
        )
        db.session.add(user)
        db.session.flush()
    return user


def seed_demo() -> tuple[bool, str, str]:
    """Create the demo organization once; returns (created, login email, password)."""
    from app.models import Membership

    if db.session.scalar(select(Organization).where(Organization.slug == DEMO_SLUG)) is not None:
        return False, DEMO_EMAIL, DEMO_PASSWORD
    owner = _user("Demo Owner", DEMO_EMAIL)
    org = create_organization(owner, "Acme Corporation", DEMO_SLUG)
    with tenant_context(org.id):
        for name, email, role in TEAM:
            db.session.add(Membership(user_id=_user(name, email).id, role=role))
        db.session.flush()
    db.session.commit()
    return True, DEMO_EMAIL, DEMO_PASSWORD
