"""Recording what admins do, and what touches an organization's security, for its audit log.

Each entry is appended to the organization's hash chain (``app/core/audit_chain.py``) in the
caller's transaction: it is committed with the caller's work, or not at all.
"""

from __future__ import annotations

from flask import g, has_request_context, request
from flask_login import current_user

from app.core import audit_chain
from app.core.tenancy import require_tenant
from app.extensions import db
from app.models import AuditEvent
from app.models.base import new_id

#: Attributes that name a target for people, tried in this order.
_LABEL_ATTRIBUTES = ("name", "title", "email", "key", "slug")


def target_label(target) -> str | None:
    """A readable name of what an entry is about, kept as it was then (a member: the person)."""
    if target is None:
        return None
    person = getattr(target, "user", None)
    if person is not None and getattr(person, "name", None):
        return f"{person.name} <{person.email}>"[:200]
    for attribute in _LABEL_ATTRIBUTES:
        value = getattr(target, attribute, None)
        if isinstance(value, str) and value:
            return value[:200]
    return None


#: The ``g`` attribute naming who acts for the signed-in person in this request.
_ACTING = "audit_acting_for"


def acting_for(actor) -> None:
    """In this request, entries the signed-in person's actions record are ``actor``'s (an operator
    signed in as them), naming the person as ``on_behalf_of``."""
    setattr(g, _ACTING, actor)


def record(action: str, target=None, actor=None, target_label_text: str | None = None, **data) -> AuditEvent:
    """Add an audit event in the current tenant (committed with the caller's work).

    ``actor`` defaults to the signed-in person; their name and email are copied into the
    entry. ``target_label_text`` names the target when it cannot be read from it. While someone
    acts for the signed-in person (``acting_for``), the entry is theirs, naming the person.
    """
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user
        acting = g.get(_ACTING)
        if acting is not None:
            actor, data = acting, {**data, "on_behalf_of": current_user.email}
    if has_request_context() and (via := g.get("audit_via")):
        data = {**data, "via": via}  # through the API, with this key
    tenant_id = require_tenant()
    event = AuditEvent(
        id=new_id(),
        tenant_id=tenant_id,
        action=action,
        actor_id=getattr(actor, "id", None),
        actor_name=getattr(actor, "name", None),
        actor_email=getattr(actor, "email", None),
        target_type=type(target).__name__.lower() if target is not None else None,
        target_id=str(target.id) if target is not None else None,
        target_label=target_label_text or target_label(target),
        data=audit_chain.plain_data({key: value for key, value in data.items() if value is not None}),
        ip_address=request.remote_addr if has_request_context() else None,
        request_id=g.get("request_id") if has_request_context() else None,
    )
    audit_chain.append(db.session, tenant_id, event)
    db.session.add(event)
    return event
