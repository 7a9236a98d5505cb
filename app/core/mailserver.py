"""The outgoing mail server and sender as the settings name them: ``SMTP_URL`` parsed into
where to connect and how, and the domain of ``MAIL_FROM``. The configuration checks both at
start-up; the mail worker connects with what :func:`parse_smtp_url` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parseaddr
from urllib.parse import parse_qsl, unquote, urlsplit


class MailServerError(ValueError):
    """``SMTP_URL`` or ``MAIL_FROM`` cannot be used; the message says why (never a password)."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where outgoing mail goes, parsed from ``SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool = False  # smtps://
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)


_SMTP_URL_FORMS = "smtp://[user:password@]host:port[?starttls=true] or smtps://[user:password@]host:port"


def parse_smtp_url(url: str) -> SmtpSettings:
    """Parse ``SMTP_URL``; a malformed one is a MailServerError that never repeats the password.

    ``smtp://`` is plain SMTP, upgraded with STARTTLS when ``?starttls=true``;
    ``smtps://`` is TLS from the first byte. User and password are
    percent-decoded (write ``@`` as ``%40``).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise MailServerError(f"SMTP_URL must look like {_SMTP_URL_FORMS}")
    try:
        port = parts.port
    except ValueError as exc:
        raise MailServerError("SMTP_URL has an invalid port (a number from 1 to 65535)") from exc
    if not parts.hostname:
        raise MailServerError(f"SMTP_URL has no host; it must look like {_SMTP_URL_FORMS}")
    if port is None or port == 0:
        raise MailServerError("SMTP_URL needs a port, for example smtp://mail.example.com:587?starttls=true")
    if parts.path not in ("", "/") or parts.fragment:
        raise MailServerError(f"SMTP_URL must not have a path; it must look like {_SMTP_URL_FORMS}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"starttls"})
    if unknown:
        raise MailServerError(
            f"SMTP_URL has unknown option(s) {', '.join(unknown)}; the only one is starttls"
        )
    starttls_value = options.get("starttls", "false").strip().lower()
    if starttls_value not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
        raise MailServerError("SMTP_URL option starttls must be true or false")
    starttls = starttls_value in {"true", "1", "yes", "on"}
    if starttls and parts.scheme == "smtps":
        raise MailServerError("SMTP_URL: smtps:// is already TLS; use smtp://…?starttls=true for STARTTLS")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username and not password:
        raise MailServerError("SMTP_URL has a user name but no password (smtp://user:password@host:port)")
    if password and not username:
        raise MailServerError("SMTP_URL has a password but no user name (smtp://user:password@host:port)")
    return SmtpSettings(
        host=parts.hostname,
        port=port,
        implicit_tls=parts.scheme == "smtps",
        starttls=starttls,
        username=username,
        password=password,
    )


def mail_from_domain(mail_from: str) -> str:
    """The domain of ``MAIL_FROM`` (it names our Message-IDs); MailServerError when there is none."""
    _name, address = parseaddr(mail_from)
    local, _, domain = address.rpartition("@")
    if not local or not domain or any(c in mail_from for c in "\r\n"):
        raise MailServerError("MAIL_FROM must be an address such as 'Worklane <no-reply@example.com>'")
    return domain
