"""Delivering the outbox over SMTP: at least once, duplicates only when a worker dies mid-send.

Each mail is an outbox row (``app/models/outbox.py``) written with what caused it.
:func:`deliver_outbox_mail` (queued by id after the commit) and :func:`sweep_outbox`
(periodic) deliver rows the same way:

1. **Claim** the row in its own short transaction: ``pending`` → ``sending``, ``attempts``
   + 1, ``due_at`` = now + ``OUTBOX_LEASE_SECONDS``. One conditional ``UPDATE … WHERE id IN
   (SELECT … FOR UPDATE SKIP LOCKED)`` (SQLite has no row locks and runs one writer at a
   time), so two workers never hold the same row.
2. **Send** it over SMTP with the Message-ID ``<row id@MAIL_FROM's domain>``, the same on
   every attempt.
3. **Record** the answer at once: ``sent``; or, for a connection error, timeout or 4xx
   answer, ``pending`` again with a later ``due_at`` (10 s, 30 s, 90 s, 270 s, 810 s), and
   ``failed`` after ``MAX_ATTEMPTS`` or on a 5xx answer, with the error kept.

A worker killed between 1 and 3 leaves the row ``sending``; once its claim lapses the
sweep claims it again. Only a kill between the server's acceptance and step 3 (a few
milliseconds) sends a mail twice, with the same Message-ID.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app
from sqlalchemy import delete, select, update

from app.core.mailserver import mail_from_domain, parse_smtp_url
from app.core.queue.queues import HIGH, LOW, Period, job, transient_mail_error
from app.core.queue.registry import load_job_modules
from app.core.tenancy import current_tenant_id, unscoped
from app.extensions import db
from app.models import OutboxMail, TenantOutboxMail
from app.models.base import utcnow
from app.models.outbox import FAILED, PENDING, SENDING, SENT

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30
#: Deliveries tried before a mail is given up (failed, with its last error).
MAX_ATTEMPTS = 6
#: The wait after the first failed attempt; each later wait is three times the last.
FIRST_RETRY_SECONDS = 10
#: Rows one sweep claims at a time, and how long a sweep goes on claiming.
SWEEP_BATCH = 20
SWEEP_BUDGET_SECONDS = 45
#: How much of an error is kept on the row.
ERROR_LENGTH = 2000
#: Sent mail is kept a day (its links, reset links included, should not linger in the database)…
SENT_MAIL_KEPT_FOR = timedelta(days=1)
#: …mail given up a week, for an operator to see why.
FAILED_MAIL_KEPT_FOR = timedelta(days=7)


def build_message(to: str, subject: str, text: str, html: str, mail_from: str, message_id: str):
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class SmtpConnection:
    """One connection to ``SMTP_URL``, opened on the first message and reused for the next."""

    def __init__(self, smtp_url: str):
        self.settings = parse_smtp_url(smtp_url)
        self.smtp: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        settings, tls = self.settings, ssl.create_default_context()
        if settings.implicit_tls:
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=SMTP_TIMEOUT_SECONDS, context=tls)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT_SECONDS)
        try:
            if settings.starttls:
                smtp.starttls(context=tls)
            if settings.username:
                smtp.login(settings.username, settings.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        if self.smtp is None:
            self.smtp = self._open()
        try:
            self.smtp.send_message(message)
        except BaseException:
            self.close()  # a connection in an unknown state is not reused
            raise

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def deliver_email(to: str, subject: str, text: str, html: str, message_id: str | None = None) -> str | None:
    """Send one email through ``SMTP_URL`` now; returns its Message-ID.

    SMTP and network errors propagate. Without ``SMTP_URL`` (development with no sink)
    the message is dropped with a warning.
    """
    config = current_app.config
    if not config.get("SMTP_URL"):
        log.warning("SMTP_URL is not set: email dropped", extra={"to": to, "subject": subject})
        return None
    mail_from = config["MAIL_FROM"]
    message_id = message_id or make_msgid(domain=mail_from_domain(mail_from))
    with SmtpConnection(config["SMTP_URL"]) as connection:
        connection.send(build_message(to, subject, text, html, mail_from, message_id))
    log.info("email delivered", extra={"to": to, "message_id": message_id})
    return message_id


# --- the outbox ------------------------------------------------------------------------------


def retry_wait(attempts: int) -> timedelta:
    """How long a mail waits after its ``attempts``-th delivery failed for a transient reason."""
    return timedelta(seconds=FIRST_RETRY_SECONDS * 3 ** (attempts - 1))


def _tenant_of(model) -> tuple:
    """An organization's mail is named by its tenant too (one shard), account mail by id alone."""
    return (model.tenant_id,) if model is TenantOutboxMail else ()


def _claim(model, limit: int, mail_id=None) -> list:
    """Claim up to ``limit`` rows that are due (or the fresh row ``mail_id``) and commit the claim."""
    now = utcnow()
    due = model.status.in_((PENDING, SENDING)) & (model.due_at <= now)
    if mail_id is not None:
        due &= model.id == mail_id
    else:
        # A mail never tried is its delivery job's for a while; the sweep takes it after that.
        grace = timedelta(seconds=current_app.config["OUTBOX_SWEEP_AFTER_SECONDS"])
        due &= (model.attempts > 0) | (model.created_at <= now - grace)
    candidates = (
        select(model.id).where(due).order_by(model.due_at).limit(limit).with_for_update(skip_locked=True)
    )
    lease = timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])
    claimed = db.session.execute(
        update(model)
        .where(model.id.in_(candidates.scalar_subquery()))
        .values(status=SENDING, attempts=model.attempts + 1, due_at=now + lease)
        .returning(
            *_tenant_of(model),
            model.id,
            model.recipient,
            model.template,
            model.subject,
            model.text_body,
            model.html_body,
            model.attempts,
        ),
        execution_options={"synchronize_session": False},
    ).all()
    db.session.commit()
    return claimed


def _record(model, mail, **values) -> None:
    """Write the outcome of this claim (unless the row was claimed again meanwhile) and commit."""
    same_tenant = [model.tenant_id == mail.tenant_id] if model is TenantOutboxMail else []
    db.session.execute(
        update(model)
        .where(*same_tenant, model.id == mail.id, model.status == SENDING, model.attempts == mail.attempts)
        .values(**values),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()


def _send_claimed(model, mail, connection: SmtpConnection) -> str | None:
    config = current_app.config
    message_id = f"<{mail.id}@{mail_from_domain(config['MAIL_FROM'])}>"
    extra = {
        "to": mail.recipient,
        "template": mail.template,
        "message_id": message_id,
        "attempt": mail.attempts,
    }
    try:
        message = build_message(
            mail.recipient, mail.subject, mail.text_body, mail.html_body, config["MAIL_FROM"], message_id
        )
        connection.send(message)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]
        if transient_mail_error(exc) and mail.attempts < MAX_ATTEMPTS:
            _record(
                model, mail, status=PENDING, due_at=utcnow() + retry_wait(mail.attempts), last_error=error
            )
            log.warning("email not delivered; will retry", extra={**extra, "error": error})
        else:
            _record(model, mail, status=FAILED, last_error=error)
            log.error("email not delivered; given up", extra={**extra, "error": error})
        return None
    _record(model, mail, status=SENT, sent_at=utcnow(), last_error=None)
    log.info("email delivered", extra=extra)
    return message_id


def _smtp_connection() -> SmtpConnection | None:
    smtp_url = current_app.config.get("SMTP_URL")
    if not smtp_url:
        log.warning("SMTP_URL is not set: mail stays in the outbox")
        return None
    return SmtpConnection(smtp_url)


# The outbox row is the retry state: a job holds only its id.
@job(HIGH, timeout=120)
def deliver_outbox_mail(mail_id: str) -> str | None:
    """Deliver one outbox row (of the current tenant, or an account mail); returns its Message-ID.

    Does nothing when the row is not there, already sent or given up, held by another
    worker, or waiting for its next retry (the sweep takes it then).
    """
    try:
        mail_id = uuid.UUID(str(mail_id))
    except ValueError:
        log.error("not an outbox mail id", extra={"mail_id": str(mail_id)[:64]})
        return None
    model = TenantOutboxMail if current_tenant_id() is not None else OutboxMail
    connection = _smtp_connection()
    if connection is None:
        return None
    with connection:
        claimed = _claim(model, limit=1, mail_id=mail_id)
        return _send_claimed(model, claimed[0], connection) if claimed else None


#: Functions of features that write into the outbox mail their own commits could not write
#: (e.g. notifications committed with no app to render them); each sweep calls them first.
_OUTBOX_WRITERS: list[Callable[[timedelta], int]] = []


def writes_missing_mail(func: Callable[[timedelta], int]) -> Callable[[timedelta], int]:
    """Register ``func(older_than)`` to run at the start of every outbox sweep (this module
    imports no feature: features register themselves)."""
    _OUTBOX_WRITERS.append(func)
    return func


# Mail its delivery job did not send (Redis away at commit, a killed worker), and retries.
@job(HIGH, timeout=300, period=Period("sweep-outbox", every_seconds=60))
def sweep_outbox() -> int:
    """Deliver every due row, of every organization: mail its job never took, retries, lapsed claims.

    First writes the mail of recent notifications committed without it (no app context).

    Runs once a minute; claims in small batches for at most
    ``SWEEP_BUDGET_SECONDS``, then leaves the rest to the next run. Returns how many it sent.
    """
    connection = _smtp_connection()
    if connection is None:
        return 0
    load_job_modules()  # every feature's writers are registered
    older_than = timedelta(seconds=current_app.config["OUTBOX_SWEEP_AFTER_SECONDS"])
    for write_missing_mail in _OUTBOX_WRITERS:
        write_missing_mail(older_than)
    deadline = time.monotonic() + SWEEP_BUDGET_SECONDS
    sent = 0
    with connection, unscoped("outbox sweep: mail of every organization waiting to be sent"):
        for model in (OutboxMail, TenantOutboxMail):
            while time.monotonic() < deadline:
                claimed = _claim(model, limit=SWEEP_BATCH)
                if not claimed:
                    break
                sent += sum(1 for mail in claimed if _send_claimed(model, mail, connection))
    if sent:
        log.info("outbox swept", extra={"sent": sent})
    return sent


@job(LOW, timeout=300, period=Period("purge-sent-mail", every_seconds=3600))
def purge_sent_mail() -> int:
    """Delete outbox mail sent over a day ago and mail given up over a week ago; how many."""
    now = utcnow()
    deleted = 0
    with unscoped("housekeeping: sent mail of every organization"):
        for model in (OutboxMail, TenantOutboxMail):
            sent = (model.status == model.SENT) & (model.sent_at < now - SENT_MAIL_KEPT_FOR)
            failed = (model.status == model.FAILED) & (model.due_at < now - FAILED_MAIL_KEPT_FOR)
            deleted += db.session.execute(delete(model).where(sent | failed)).rowcount
        db.session.commit()
    log.info("sent mail purged", extra={"deleted": deleted})
    return deleted
