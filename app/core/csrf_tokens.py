"""The signed CSRF token a page carries: signed once per session secret and process, not per page.

Flask-WTF signs the session's CSRF secret anew for each request that shows a form (JSON, base64
and an HMAC with a time stamp). The check of a posted form reads only that the signature is
good and holds the session's secret: with ``WTF_CSRF_TIME_LIMIT = None`` the time stamp does not
limit it. So a signature this process made for the same secret, with the same key, is the same
token, and each process keeps the ones it made (at most ``KEPT``, then it starts afresh).
"""

from __future__ import annotations

from flask import current_app, g, session
from flask_wtf.csrf import generate_csrf

from app.core.session_data import CSRF_KEY

#: Signatures kept per process (one per session secret seen: about 200 bytes each).
KEPT = 10_000

_signed: dict[tuple[str, str], str] = {}


def csrf_token() -> str:
    """The signed CSRF token for this request's session (Flask-WTF's ``generate_csrf``)."""
    request_globals = g._get_current_object()
    token = request_globals.get(CSRF_KEY)
    if token:
        return token
    app = current_app._get_current_object()  # each read through a proxy costs about 1 µs
    if app.config.get("WTF_CSRF_TIME_LIMIT") is not None:
        return generate_csrf()  # a time-limited token must carry its own time
    secret = session._get_current_object().get(CSRF_KEY)
    key = (app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key, secret)
    token = _signed.get(key) if secret else None
    if token is None:
        token = generate_csrf()  # draws the secret of a visitor who has none yet
        if len(_signed) >= KEPT:
            _signed.clear()
        _signed[(key[0], session[CSRF_KEY])] = token
    setattr(request_globals, CSRF_KEY, token)  # where Flask-WTF keeps it for the request
    return token
