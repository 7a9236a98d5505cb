"""``/dev/mail``: read the mail the local sink caught. Registered in development only."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, request
from markupsafe import Markup, escape

from app.devmail import is_message_name

bp = Blueprint("devmail", __name__, url_prefix="/dev/mail")

LIST_LIMIT = 500
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING_PUNCTUATION = ".,;:!?)]}"

#: The HTML part may style itself and show inline images; nothing else (no script, no fetch, no form).
HTML_PART_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",  # the message page previews it in a sandboxed iframe
}


@bp.before_request
def _this_machine_only():
    """Caught mail holds sign-in links: only a browser on this machine may read it."""
    try:
        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        abort(403, "The development mailbox is only served to this machine (127.0.0.1).")


def mail_dir() -> Path:
    return Path(current_app.config["DEV_MAIL_DIR"])


def _parse(path: Path, headers_only: bool = False) -> EmailMessage:
    with open(path, "rb") as fh:
        return BytesParser(policy=policy.default).parse(fh, headersonly=headers_only)


def _received_at(name: str) -> datetime:
    return datetime.strptime(name.split("Z-", 1)[0], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)


def _summary(name: str, message: EmailMessage) -> dict:
    return {
        "name": name,
        "received_at": _received_at(name),
        "to": str(message.get("To", "")),
        "from": str(message.get("From", "")),
        "subject": str(message.get("Subject", "")) or "(no subject)",
        "date": str(message.get("Date", "")),
        "message_id": str(message.get("Message-ID", "")),
    }


def _message_or_404(name: str) -> EmailMessage:
    if not is_message_name(name):
        abort(404)
    path = mail_dir() / name
    if not path.is_file():
        abort(404)
    return _parse(path)


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else None


def linkify(text: str) -> Markup:
    """Escape ``text`` and make its http(s) URLs clickable; nothing else becomes markup."""
    pieces: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group().rstrip(_TRAILING_PUNCTUATION)
        end = match.start() + len(url)
        pieces.append(escape(text[position : match.start()]))
        pieces.append(Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(url))
        position = end
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)


@bp.get("")
def index():
    folder = mail_dir()
    names = sorted(
        (path.name for path in folder.glob("*.eml") if is_message_name(path.name)) if folder.is_dir() else (),
        reverse=True,
    )[:LIST_LIMIT]
    messages = [_summary(name, _parse(folder / name, headers_only=True)) for name in names]
    return render_template("devmail/index.html", messages=messages, mail_dir=folder)


@bp.get("/<name>")
def show(name):
    message = _message_or_404(name)
    text = _part(message, "plain")
    return render_template(
        "devmail/show.html",
        mail=_summary(name, message),
        text=linkify(text) if text is not None else None,
        has_html=_part(message, "html") is not None,
    )


@bp.get("/<name>/html")
def show_html(name):
    html = _part(_message_or_404(name), "html")
    if html is None:
        abort(404)
    return html, 200, {"Content-Type": "text/html; charset=utf-8", **HTML_PART_HEADERS}
