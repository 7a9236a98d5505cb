"""The service worker (``app/static/js/sw.js``, served as ``/sw.js`` so that it may answer for
every page) and the header that tells it whose pages it may keep.

Each page of a signed-in session carries ``Worklane-Offline: tag=<tag>; max-age=<seconds>``:
the tag is an HMAC of the session id (the id itself, a bearer secret, never reaches the
script), new with each login, and the page may be shown offline for the session's idle time at
most. A page without the header (signed out) makes the worker drop every page it kept.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from pathlib import Path

from flask import Flask, current_app, session

HEADER = "Worklane-Offline"


def session_tag(secret_key: str, sid: str) -> str:
    """The name the service worker knows a session by: not the session id, and not its CSRF secret."""
    return hmac.new(secret_key.encode(), f"worklane.offline:{sid}".encode(), hashlib.sha256).hexdigest()[:32]


#: Each session's tag, made once per process (every page of the session carries it).
_tagged = functools.lru_cache(maxsize=10_000)(session_tag)


@functools.cache
def _script(static_folder: str) -> bytes:
    return (Path(static_folder) / "js" / "sw.js").read_bytes()


def service_worker():
    response = current_app.response_class(_script(current_app.static_folder), mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"  # a new release's worker is picked up at once
    return response


def register_offline(app: Flask) -> None:
    """Serve ``/sw.js`` and name the session on each page of a signed-in person."""
    app.add_url_rule("/sw.js", "service_worker", service_worker)
    idle_seconds = app.config["SESSION_IDLE_MINUTES"] * 60

    @app.after_request
    def _name_the_session(response):
        if response.mimetype != "text/html":
            return response
        current = session._get_current_object()
        if getattr(current, "logged_in", False) and current.sid:
            tag = _tagged(app.secret_key, current.sid)
            response.headers[HEADER] = f"tag={tag}; max-age={idle_seconds}"
        return response
