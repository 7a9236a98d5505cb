"""Outgoing email: render a template pair, then hand delivery to a worker.

``send_email("ada@example.com", "reset_password", name=…, reset_url=…, expires_minutes=60)``
renders ``templates/email/reset_password.txt`` (its ``{% block subject %}`` is
the subject) and ``reset_password.html`` in the current app context, and
enqueues :func:`workers.mail.deliver_email` with plain strings only. Its kind in
``workers.queues.JOB_KINDS`` puts it on the high queue and retries it with backoff when
the server is unreachable or answers with a temporary error.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import getaddresses, parseaddr
from urllib.parse import urlsplit

from flask import current_app, render_template
from rq.job import Job

from workers.queues import enqueue


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


def send_email(to: str, template: str, job_id: str | None = None, **context) -> Job:
    """Render ``template`` for ``to`` now and queue its delivery (high queue, retried on failure).

    With a ``job_id`` the mail is queued once: a second call with the same id (a job that
    runs again after its worker died) returns the first delivery job and queues nothing.
    """
    to = check_recipient(to)
    rendered = render_email(template, **context)
    return enqueue(
        "workers.mail.deliver_email",
        to,
        rendered.subject,
        rendered.text,
        rendered.html,
        job_id=job_id,
        description=f"email {template} to {to}",
    )


def public_url(endpoint: str, **values) -> str:
    """An absolute link to ``endpoint`` on ``PUBLIC_URL``, for mail written where there is no request."""
    base = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path.rstrip("/") or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)
