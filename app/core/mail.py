"""Outgoing email: render a template pair into the outbox; workers deliver it.

``send_email("ada@example.com", "reset_password", name=…, reset_url=…, expires_minutes=60)``
renders ``templates/email/reset_password.txt`` (its ``{% block subject %}`` is
the subject) and ``reset_password.html`` in the current app context and stores the mail
as an outbox row in the current transaction (``app/models/outbox.py``). When the
transaction commits, :func:`app.core.mail_delivery.deliver_outbox_mail` is queued with the row's id;
the periodic sweep (``app.core.mail_delivery.sweep_outbox``) sends whatever that job did not, so a
Redis outage or a killed worker delays mail but never drops it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr
from urllib.parse import urlsplit

from flask import current_app, has_app_context, render_template
from redis import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.queue.queues import enqueue
from app.core.tenancy import current_tenant_id, tenant_context
from app.extensions import db
from app.models import OutboxMail, TenantOutboxMail
from app.models.base import new_id

log = logging.getLogger(__name__)

DELIVERY_JOB = "app.core.mail_delivery.deliver_outbox_mail"
_PENDING = "_outbox_mail_to_queue"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(template: str, **context) -> RenderedEmail:
    """Render ``templates/email/<template>.txt`` and ``.html``; the subject is the .txt's subject block."""
    app = current_app._get_current_object()
    text_name, html_name = f"email/{template}.txt", f"email/{template}.html"
    text_template = app.jinja_env.get_template(text_name)
    subject_block = text_template.blocks.get("subject")
    if subject_block is None:
        raise LookupError(f"{text_name} has no {{% block subject %}}")
    values = dict(context)
    app.update_template_context(values)
    subject = " ".join("".join(subject_block(text_template.new_context(values))).split())
    if not subject:
        raise ValueError(f"{text_name} renders an empty subject")
    text = render_template(text_name, **context)
    html = render_template(html_name, subject=subject, **context)
    return RenderedEmail(subject=subject, text=text.strip() + "\n", html=html)


def check_recipient(to: str) -> str:
    """Return ``to`` when it is one plausible address (``ada@example.com`` or ``Ada <ada@…>``)."""
    if not isinstance(to, str) or not to.strip() or any(c in to for c in "\r\n\0"):
        raise ValueError("an email recipient must be one address on one line")
    if len(getaddresses([to])) != 1:
        raise ValueError(f"expected one email address, got {to!r}")
    _name, address = parseaddr(to)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "@" in local or any(c.isspace() for c in address):
        raise ValueError(f"not an email address: {to!r}")
    if "." not in domain.strip(".") and domain != "localhost":
        raise ValueError(f"not an email address: {to!r}")
    return to.strip()


def send_email(to: str, template: str, **context) -> OutboxMail | TenantOutboxMail:
    """Render ``template`` for ``to`` now and store it in the outbox, in the current transaction.

    The caller commits: the mail is sent only if what caused it is committed (a rollback
    leaves no mail), and once committed it is sent even if Redis or every worker is down
    at that moment (the sweep picks it up). After the commit a delivery job is queued with
    the row's id only, so neither links nor bodies travel through Redis.
    Written as an organization (a tenant is set), the mail is that tenant's.
    """
    to = check_recipient(to)
    rendered = render_email(template, **context)
    model = TenantOutboxMail if current_tenant_id() is not None else OutboxMail
    mail = model(
        id=new_id(),
        recipient=to,
        template=template,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
    )
    db.session.add(mail)
    db.session.flush()
    pending = db.session.info.setdefault(_PENDING, [])
    pending.append((str(mail.tenant_id) if model is TenantOutboxMail else None, str(mail.id), template, to))
    return mail


@event.listens_for(Session, "after_commit")
def _queue_delivery(session) -> None:
    """Queue one delivery job per committed mail, by id; if Redis is away the sweep sends it later."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    if not has_app_context():
        log.warning(
            "mail not queued: no app context; the outbox sweep will send it", extra={"mails": len(pending)}
        )
        return
    for index, (tenant_id, mail_id, template, to) in enumerate(pending):
        try:
            with tenant_context(tenant_id):
                enqueue(
                    DELIVERY_JOB, mail_id, job_id=f"mail-{mail_id}", description=f"email {template} to {to}"
                )
        except RedisError as exc:
            # Stop trying (each try could wait for a timeout): the sweep sends these.
            log.warning(
                "mail not queued; the outbox sweep will send it",
                extra={"mails": len(pending) - index, "error": str(exc)},
            )
            return


@event.listens_for(Session, "after_soft_rollback")
def _forget_delivery(session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction: its mail is gone
        session.info.pop(_PENDING, None)


def public_url(endpoint: str, **values) -> str:
    """An absolute link to ``endpoint`` on ``PUBLIC_URL``, for mail written where there is no request."""
    base = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path.rstrip("/") or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)
