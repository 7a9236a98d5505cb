"""All models, imported here so Alembic and the tests see the whole metadata."""

from app.models.accounts import User
from app.models.jobs import BackgroundJob
from app.models.orgs import AuditEvent, Invitation, Membership, Organization

__all__ = ["AuditEvent", "BackgroundJob", "Invitation", "Membership", "Organization", "User"]
