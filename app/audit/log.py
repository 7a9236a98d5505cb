"""Reading the audit log: the filters people choose (actor, action, dates), a page of entries
newest first with the total, the choices the filters offer, and each entry in words."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent

#: Entries a page of the log shows.
PER_PAGE = 50
#: Rows an export reads at a time.
EXPORT_BATCH = 500

#: Each action in words (what the filter menu shows), in the order of the menu's groups.
ACTION_LABELS = {
    "auth.signed_in": "Signed in",
    "auth.sign_in_failed": "Failed sign-in",
    "member.role_changed": "Member role changed",
    "member.removed": "Member removed",
    "member.left": "Member left",
    "member.restored": "Member restored",
    "invitation.created": "Invitation sent",
    "invitation.resent": "Invitation resent",
    "invitation.revoked": "Invitation revoked",
    "invitation.accepted": "Invitation accepted",
    "organization.created": "Organization created",
    "organization.renamed": "Organization renamed",
    "audit.retention_changed": "Audit log retention changed",
    "audit.exported": "Audit log exported",
    "export.started": "Export started",
    "export.downloaded": "Export downloaded",
    "project.created": "Project created",
    "project.updated": "Project updated",
    "project.archived": "Project archived",
    "project.unarchived": "Project unarchived",
    "state.created": "Workflow state added",
    "state.renamed": "Workflow state renamed",
    "state.deleted": "Workflow state deleted",
    "label.created": "Label created",
    "label.updated": "Label updated",
    "label.deleted": "Label deleted",
    "view.deleted": "Shared view deleted",
    "two_factor.enabled": "Two-factor turned on",
    "two_factor.disabled": "Two-factor turned off",
    "two_factor.recovery_codes_regenerated": "New recovery codes",
    "two_factor.policy_changed": "Two-factor policy changed",
    "organization.deletion_requested": "Deletion requested",
    "organization.deletion_cancelled": "Deletion cancelled",
    "organization.suspended": "Suspended by an operator",
    "organization.unsuspended": "Opened again by an operator",
    "organization.plan_changed": "Plan changed by an operator",
    "impersonation.started": "Operator signed in as a member",
    "impersonation.action": "Change made by an operator as a member",
    "impersonation.ended": "Operator stopped acting as a member",
    "impersonation.expired": "Operator's time as a member ran out",
    "api_key.created": "API key made",
    "api_key.revoked": "API key revoked",
    "api_key.max_days_changed": "Longest API key lifetime changed",
    "sso.configured": "Single sign-on configured",
    "sso.enabled": "Single sign-on turned on",
    "sso.disabled": "Single sign-on turned off",
    "sso.removed": "Single sign-on removed",
    "sso.enforced": "Single sign-on enforced",
    "sso.enforcement_ended": "Single sign-on no longer enforced",
    "sso.domain_added": "Domain added",
    "sso.domain_verified": "Domain verified",
    "sso.domain_removed": "Domain removed",
    "sso.signed_in": "Signed in through single sign-on",
    "sso.sign_in_failed": "Failed single sign-on",
    "sso.provisioned": "Joined by single sign-on",
    "sso.link_requested": "Account link to single sign-on mailed",
    "sso.linked": "Account linked to single sign-on",
    "sso.break_glass": "Owner entered without single sign-on (break-glass)",
    "webhook.created": "Webhook endpoint added",
    "webhook.updated": "Webhook endpoint changed",
    "webhook.secret_rotated": "Webhook secret rotated",
    "webhook.enabled": "Webhook endpoint enabled",
    "webhook.disabled": "Webhook endpoint disabled",
    "webhook.disabled_by_failure": "Webhook endpoint disabled after failures",
    "webhook.deleted": "Webhook endpoint deleted",
    "webhook.redelivered": "Webhook delivery sent again",
}


def action_label(action: str) -> str:
    """An action in words; one without a label is shown as it is stored."""
    return ACTION_LABELS.get(action) or action.replace(".", ": ").replace("_", " ").capitalize()


def describe(event: AuditEvent) -> str:
    """What happened, as a sentence a reader follows (the actor is shown beside it)."""
    data = event.data or {}
    target = event.target_label or data.get("name") or data.get("email") or ""
    action = event.action
    if action == "member.role_changed":
        return f"Changed the role of {target} from {data.get('old')} to {data.get('new')}"
    if action in ("member.removed", "member.left", "member.restored"):
        verb = {"member.removed": "Removed", "member.left": "Left:", "member.restored": "Restored"}
        return f"{verb[action]} {target} ({data.get('role')})"
    if action == "organization.renamed":
        return f"Renamed the organization from “{data.get('old')}” to “{data.get('new')}”"
    if action == "auth.sign_in_failed":
        return "A sign-in with a wrong password"
    if action.startswith("impersonation."):
        detail = data.get("reason") or (
            f"{data.get('method')} {data.get('path')}" if data.get("path") else ""
        )
        as_whom = f"as {data.get('person')}" if data.get("person") else ""
        return " · ".join(part for part in (action_label(action), as_whom, detail) if part)
    if action == "audit.retention_changed":
        return f"Audit log kept {data.get('new')} days (was {data.get('old')})"
    label = action_label(action)
    return f"{label}: {target}" if target else label


@dataclass
class AuditFilters:
    """The filters of the log page and its exports, read from the query string."""

    actor: uuid.UUID | None = None
    action: str | None = None
    since: date | None = None
    until: date | None = None
    page: int = 1
    #: Values the request gave that mean nothing here (left out, and said so on the page).
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> AuditFilters:
        filters = cls()
        if args.get("actor"):
            try:
                filters.actor = uuid.UUID(args["actor"])
            except ValueError:
                filters.ignored.append("actor")
        if args.get("action"):
            filters.action = args["action"][:64]
        for name, attribute in (("from", "since"), ("to", "until")):
            if args.get(name):
                try:
                    setattr(filters, attribute, date.fromisoformat(args[name]))
                except ValueError:
                    filters.ignored.append(name)
        try:
            filters.page = max(1, int(args.get("page") or 1))
        except ValueError:
            filters.ignored.append("page")
        return filters

    def query_args(self, **overrides) -> dict[str, str]:
        """The filters as query-string values (empty ones left out), for links and exports."""
        values = {
            "actor": str(self.actor) if self.actor else None,
            "action": self.action,
            "from": self.since.isoformat() if self.since else None,
            "to": self.until.isoformat() if self.until else None,
        }
        values.update(overrides)
        return {key: str(value) for key, value in values.items() if value not in (None, "")}

    def criteria(self) -> list:
        clauses = []
        if self.actor:
            clauses.append(AuditEvent.actor_id == self.actor)
        if self.action:
            clauses.append(AuditEvent.action == self.action)
        if self.since:
            clauses.append(AuditEvent.created_at >= datetime.combine(self.since, time(), tzinfo=UTC))
        if self.until:
            end = datetime.combine(self.until + timedelta(days=1), time(), tzinfo=UTC)
            clauses.append(AuditEvent.created_at < end)
        return clauses


@dataclass
class LogPage:
    entries: list[AuditEvent]
    total: int
    page: int
    pages: int


def log_page(filters: AuditFilters) -> LogPage:
    """One page of the current organization's log under ``filters``, newest first, with the total."""
    criteria = filters.criteria()
    total = db.session.scalar(select(func.count()).select_from(AuditEvent).where(*criteria)) or 0
    pages = max(1, -(-total // PER_PAGE))
    page = min(filters.page, pages)
    entries = db.session.scalars(
        select(AuditEvent)
        .where(*criteria)
        .order_by(AuditEvent.sequence.desc())
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE)
    ).all()
    return LogPage(list(entries), total, page, pages)


def entries_before(filters: AuditFilters, before: int | None = None) -> list[AuditEvent]:
    """The next batch of entries under ``filters``, newest first, older than sequence ``before``
    (for the exports, which read the log a batch at a time)."""
    statement = select(AuditEvent).where(*filters.criteria()).order_by(AuditEvent.sequence.desc())
    if before is not None:
        statement = statement.where(AuditEvent.sequence < before)
    return list(db.session.scalars(statement.limit(EXPORT_BATCH)))


def actor_choices() -> list[tuple[str, str]]:
    """The people who appear in the log as actors: (id, "name <email>"), by name."""
    rows = db.session.execute(
        select(AuditEvent.actor_id, func.max(AuditEvent.actor_name), func.max(AuditEvent.actor_email))
        .where(AuditEvent.actor_id.is_not(None))
        .group_by(AuditEvent.actor_id)
    ).all()
    choices = [(str(actor_id), f"{name or 'Someone'} <{email or '?'}>") for actor_id, name, email in rows]
    return sorted(choices, key=lambda choice: choice[1].lower())


def action_choices() -> list[tuple[str, str]]:
    """The actions the log holds, in words, by label."""
    actions = db.session.scalars(select(AuditEvent.action).distinct()).all()
    return sorted(((action, action_label(action)) for action in actions), key=lambda choice: choice[1])
