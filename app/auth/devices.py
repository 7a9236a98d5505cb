"""A person's signed-in sessions as their account page lists them (browser, address, when signed
in, last seen, which one is this), and ending one or all the others.

The sessions themselves live in Redis (``app/core/sessions.py``, the per-person index in
``app/core/session_index.py``); what the list shows was stored with the session at sign-in
(``remember_device``) and by each write of it (the last seen time, at most once a minute).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, request, session
from redis.exceptions import RedisError

from app.core.session_data import STORED_AT
from app.core.session_index import end_stored_sessions, handle_of, stored_sessions

#: Session fields holding the browser's User-Agent and address at sign-in.
AGENT_KEY = "_agent"
ADDRESS_KEY = "_address"
#: The sign-in time (``app.auth.services.AUTH_TIME_KEY``; set by ``start_session``).
SIGNED_IN_KEY = "_auth_at"

# (pattern, name), the first that matches wins: Edge and Opera also say Chrome, Chrome also says Safari.
_BROWSERS = (
    (re.compile(r"Edg(?:e|A|iOS)?/"), "Edge"),
    (re.compile(r"OPR/|Opera"), "Opera"),
    (re.compile(r"Firefox/|FxiOS/"), "Firefox"),
    (re.compile(r"Chrome/|CriOS/|Chromium/"), "Chrome"),
    (re.compile(r"Version/[\d.]+.*Safari/"), "Safari"),
)
#: System: what its User-Agent says, the first found wins (Android's also says Linux, iOS's Mac OS X).
_SYSTEMS = {
    "iOS": "iPhone|iPad|iPod",
    "Android": "Android",
    "ChromeOS": "CrOS",
    "Windows": "Windows",
    "macOS": "Mac OS X|Macintosh",
    "Linux": "Linux|X11",
}


def browser_summary(agent: str | None) -> str:
    """ "Firefox on Linux", "Chrome on Android", or "Unknown browser" when nothing is recognised."""
    agent = agent or ""
    browser = next((name for pattern, name in _BROWSERS if pattern.search(agent)), None)
    system = next((name for name, pattern in _SYSTEMS.items() if re.search(pattern, agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"A browser on {system}" if system else "Unknown browser")


def remember_device() -> None:
    """Store, with a new login, what its session list shows: the browser and the address."""
    session[AGENT_KEY] = (request.headers.get("User-Agent") or "")[:300]
    session[ADDRESS_KEY] = request.remote_addr


@dataclass(frozen=True)
class SignedInSession:
    handle: str
    browser: str
    address: str | None
    signed_in_at: datetime | None
    last_seen_at: datetime | None
    current: bool


def _moment(seconds) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int | float) else None


def _interface():
    return current_app.session_interface


def _stored(user) -> list:
    return stored_sessions(_interface(), user.id, user.get_id())


def sessions_of(user) -> list[SignedInSession] | None:
    """The person's signed-in sessions, this one first, then the most recently seen (None while
    the session store cannot be read)."""
    current = handle_of(session.sid) if getattr(session, "sid", None) else None
    try:
        stored = _stored(user)
    except RedisError:
        return None
    listed = [
        SignedInSession(
            handle=item.handle,
            browser=browser_summary(item.fields.get(AGENT_KEY)),
            address=item.fields.get(ADDRESS_KEY),
            signed_in_at=_moment(item.fields.get(SIGNED_IN_KEY)),
            last_seen_at=_moment(item.fields.get(STORED_AT)),
            current=item.handle == current,
        )
        for item in stored
    ]
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(listed, key=lambda item: (not item.current, -(item.last_seen_at or epoch).timestamp()))


def end_session_by_handle(user, handle: str) -> bool:
    """End one of the person's other sessions; False when there is none by that handle (or it is
    this one, which signing out ends)."""
    sids = [stored.sid for stored in _stored(user) if stored.handle == handle and stored.sid != session.sid]
    end_stored_sessions(_interface(), user.id, sids)
    return bool(sids)


def end_other_sessions(user) -> int:
    """End every session of the person but this one; how many."""
    sids = [stored.sid for stored in _stored(user) if stored.sid != session.sid]
    end_stored_sessions(_interface(), user.id, sids)
    return len(sids)
