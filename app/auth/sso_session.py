"""What a session holds about single sign-on: the organizations it signed in to through their
provider, and the owners' break-glass entries, each until when.

An organization that enforces single sign-on lets a member in only while this session signed in
through its provider less than ``SSO_SESSION_SECONDS`` ago (a day by default); then the provider is
asked again. An owner locked out by a broken provider may enter by break-glass (password and
second factor again, audited) for ``BREAK_GLASS_SECONDS``. Both live in the server-side session,
so logging out or ending the session ends them.
"""

from __future__ import annotations

import time
import uuid

from flask import current_app, session

SIGNED_IN_KEY = "_sso"
BREAK_GLASS_KEY = "_sso_break_glass"
BREAK_GLASS_SECONDS = 3600
#: Set while an operator acts as the person (``app/operators/impersonation.py``).
IMPERSONATION_KEY = "_impersonation"


def now() -> float:
    """The time the markers are set and read at (one place, so tests may move the clock)."""
    return time.time()


def _until(key: str, org_id: uuid.UUID) -> float:
    return (session.get(key) or {}).get(org_id.hex, 0)


def _mark(key: str, org_id: uuid.UUID, seconds: float) -> None:
    marks = {k: v for k, v in (session.get(key) or {}).items() if v > now()}
    marks[org_id.hex] = now() + seconds
    session[key] = marks


def mark_signed_in(org_id: uuid.UUID) -> None:
    """This session has just signed in through the organization's provider."""
    _mark(SIGNED_IN_KEY, org_id, current_app.config["SSO_SESSION_SECONDS"])


def signed_in_through(org_id: uuid.UUID) -> bool:
    """Whether this session signed in through the organization's provider recently enough."""
    return _until(SIGNED_IN_KEY, org_id) > now()


def mark_break_glass(org_id: uuid.UUID) -> None:
    _mark(BREAK_GLASS_KEY, org_id, BREAK_GLASS_SECONDS)


def broke_glass(org_id: uuid.UUID) -> bool:
    return _until(BREAK_GLASS_KEY, org_id) > now()


def admits(org_id: uuid.UUID) -> bool:
    """Whether an organization that enforces single sign-on lets this session in.

    An operator acting as a member is let in as that member: every action of theirs is in the
    organization's audit log as the operator's."""
    return signed_in_through(org_id) or broke_glass(org_id) or IMPERSONATION_KEY in session
