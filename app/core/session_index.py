"""Each person's stored sessions, listed and ended: a sorted set per person of their session ids.

``worklane:session-index:<user id>`` holds the ids of the person's stored sessions, each scored
with the time it was last written. The session's own save script (``app/core/sessions.py``) adds
or re-scores the id in the same call that writes the session, so keeping the index costs no
round trip of its own, and drops ids last written longer ago than a session's idle lifetime
(those sessions have expired). Ids of sessions ended otherwise (a logout, a new login) are
dropped when the list is next read. Ending a session deletes its hash: every web process then
finds no session behind the cookie.

A session is shown by its *handle*, a digest of its id: the id itself is the cookie's secret and
never appears in a page.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec

from app.core.session_data import USER_KEY

_decode = msgspec.msgpack.Decoder().decode


def index_key(key_prefix: str, user_id) -> str:
    """``worklane:session-index:<user id>``: beside the sessions, not under their prefix."""
    return f"{key_prefix.rstrip(':')}-index:{user_id}"


def handle_of(sid: str) -> str:
    """The name a page gives a session: a digest of its id, never the id."""
    return hashlib.sha256(f"worklane.session-handle:{sid}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class StoredSession:
    """One stored session of a person: its id, handle and fields (decoded, flash messages left out)."""

    sid: str
    handle: str
    fields: dict


def stored_sessions(interface, user_id, identity: str) -> list[StoredSession]:
    """The person's stored sessions that still hold their current login (``identity``); ids of
    ended or expired sessions, or of logins a password change ended, are dropped from the index."""
    client, prefix = interface.client, interface.key_prefix
    key = index_key(prefix, user_id)
    sids = [raw.decode() for raw in client.zrange(key, 0, -1)]
    if not sids:
        return []
    pipe = client.pipeline(transaction=False)
    for sid in sids:
        pipe.hgetall(prefix + sid)
    found, gone = [], []
    for sid, raw_fields in zip(sids, pipe.execute(), strict=True):
        fields = {
            name.decode(): _decode(value)
            for name, value in raw_fields.items()
            if not name.startswith(b"_flash:")
        }
        if fields.get(USER_KEY) != identity:
            gone.append(sid)
            continue
        found.append(StoredSession(sid, handle_of(sid), fields))
    if gone:
        client.zrem(key, *gone)
    return found


def end_stored_sessions(interface, user_id, sids: list[str]) -> None:
    """End these sessions of the person in every web process: their hashes go, and their ids."""
    if not sids:
        return
    pipe = interface.client.pipeline(transaction=False)
    pipe.delete(*(interface.key_prefix + sid for sid in sids))
    pipe.zrem(index_key(interface.key_prefix, user_id), *sids)
    pipe.execute()
    for sid in sids:
        interface.recent.forget(sid)
