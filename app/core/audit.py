"""Recording what admins do, for the organization's audit log."""

from __future__ import annotations

from flask import g, has_request_context, request
from flask_login import current_user

from app.extensions import db
from app.models import AuditEvent


def record(action: str, target=None, actor=None, **data) -> AuditEvent:
    """Add an audit event in the current tenant (committed with the caller's work)."""
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user
    event = AuditEvent(
        action=action,
        actor_id=getattr(actor, "id", None),
        target_type=type(target).__name__.lower() if target is not None else None,
        target_id=str(target.id) if target is not None else None,
        data={key: value for key, value in data.items() if value is not None},
        ip_address=request.remote_addr if has_request_context() else None,
        request_id=g.get("request_id") if has_request_context() else None,
    )
    db.session.add(event)
    return event
