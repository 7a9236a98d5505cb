"""Delivering outgoing email over SMTP (queued by :func:`app.mail.send_email`)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app
from rq import get_current_job

from app.config import mail_from_domain, parse_smtp_url
from app.extensions import redis_connections

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30


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


def delivered_key(job_id: str) -> str:
    return f"worklane:mail:delivered:{job_id}"


#: How long a delivery is remembered, so a re-run job does not send its mail again.
DELIVERED_KEPT_SECONDS = 7 * 24 * 3600


def deliver_email(to: str, subject: str, text: str, html: str) -> str | None:
    """Send one email through ``SMTP_URL``; returns its Message-ID.

    SMTP and network errors propagate, so the job is retried (``workers.queues.JOB_KINDS``).
    A retried job keeps its Message-ID (it is made from the job id), and a job that already
    delivered its mail (a re-run after its worker died) sends nothing again. Without
    ``SMTP_URL`` (development with no sink) the message is dropped with a warning.
    """
    config = current_app.config
    if not config.get("SMTP_URL"):
        log.warning("SMTP_URL is not set: email dropped", extra={"to": to, "subject": subject})
        return None
    settings = parse_smtp_url(config["SMTP_URL"])
    mail_from = config["MAIL_FROM"]
    domain = mail_from_domain(mail_from)
    job = get_current_job()
    message_id = f"<{job.id}@{domain}>" if job is not None else make_msgid(domain=domain)
    redis = redis_connections.client()
    if job is not None and redis.exists(delivered_key(job.id)):
        log.info("email already delivered", extra={"to": to, "message_id": message_id})
        return message_id
    message = build_message(to, subject, text, html, mail_from, message_id)

    tls = ssl.create_default_context()
    if settings.implicit_tls:
        smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=SMTP_TIMEOUT_SECONDS, context=tls)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT_SECONDS)
    with smtp:
        if settings.starttls:
            smtp.starttls(context=tls)
        if settings.username:
            smtp.login(settings.username, settings.password)
        smtp.send_message(message)
    if job is not None:
        redis.set(delivered_key(job.id), message_id, ex=DELIVERED_KEPT_SECONDS)
    log.info("email delivered", extra={"to": to, "message_id": message_id})
    return message_id
