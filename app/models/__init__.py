"""All models, imported here so Alembic and the tests see the whole metadata."""

from app.models.accounts import User
from app.models.api import ApiIdempotentRequest, ApiKey
from app.models.audit import AuditCheckpoint, AuditEvent
from app.models.flags import FeatureFlag
from app.models.imports import ImportProblem
from app.models.labels import Label
from app.models.notifications import Notification
from app.models.orgs import HeldSlug, Invitation, Membership, Organization
from app.models.outbox import OutboxMail, TenantOutboxMail
from app.models.reports import ReportSnapshot
from app.models.sso import SsoConnection, SsoDomain, SsoIdentity, VerifiedDomain
from app.models.tasks import Task
from app.models.two_factor import RecoveryCode, TwoFactor
from app.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from app.models.work import (
    Comment,
    Issue,
    IssueActivity,
    IssueAssignee,
    IssueLabel,
    IssueWatcher,
    Project,
    SavedView,
)
from app.models.workflow import WorkflowState

__all__ = [
    "ApiIdempotentRequest",
    "ApiKey",
    "AuditCheckpoint",
    "AuditEvent",
    "Comment",
    "FeatureFlag",
    "HeldSlug",
    "ImportProblem",
    "Invitation",
    "Issue",
    "IssueActivity",
    "IssueAssignee",
    "IssueLabel",
    "IssueWatcher",
    "Label",
    "Membership",
    "Notification",
    "Organization",
    "OutboxMail",
    "Project",
    "RecoveryCode",
    "ReportSnapshot",
    "SavedView",
    "SsoConnection",
    "SsoDomain",
    "SsoIdentity",
    "Task",
    "TenantOutboxMail",
    "TwoFactor",
    "User",
    "VerifiedDomain",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
    "WorkflowState",
]
