"""Sessions: stored in Redis for people who log in, carried in the cookie for visitors.

A **logged-in** session is a Redis hash ``worklane:session:<id>`` whose fields are the session's
keys; the cookie holds only the random id. A request writes back only the keys it changed
(``HSET``/``HDEL`` in one script), so the parallel requests of one person (many tabs) never undo
each other's writes. The script does nothing when the session has ended meanwhile (logged out in
another tab, expired), so a request still in flight cannot bring an ended session back. Each
flash message is a field of its own: two requests can both add one, and showing them removes
only those shown. Any web process can serve any request.

A **visitor** (no login) has nothing in Redis: what a visitor's session holds between two
requests (a flash message across a redirect, the address on the check-your-mail page) travels
in the same cookie, signed with the secret key. Anonymous traffic thus never grows Redis.

The **CSRF secret** is computed, never stored (app/core/session_data.py); a visitor's session
and CSRF cookie are read and written by app/core/session_cookies.py.

If Redis is unreachable (or its circuit breaker is open, see app/core/redis_breaker.py):

- a page (GET or HEAD) of a person whose session this process read from Redis within the last
  ``SESSION_OUTAGE_GRACE_SECONDS`` is served from that copy, read-only: nothing the request
  changes in the session is kept. The copy is dropped when this process ends the session; a
  session ended by another process in that last moment before the outage can thus be served
  here until Redis is back (a password change, or anything else that ends all of a person's
  sessions, still ends it: the login's identity carries the account's session epoch, checked
  against the database);
- any other request whose cookie names a stored session is answered with a 503 page and
  ``Retry-After`` (:class:`SessionStoreUnavailable`): never a 500, and never a page that looks
  logged out or a redirect to the login form. The session cookie is left as it is, so the person
  is signed in again as soon as Redis answers;
- signing in or out gets the same 503 page: a login that could not be stored, or a logout that
  could not end the stored session, must not look as if it had worked.

Visitors are served as usual (their session is in their cookie).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable

import msgspec
from flask import Flask, session
from redis.exceptions import RedisError, ResponseError

from app.core.headers import vary_on
from app.core.redis_reads import read_together
from app.core.session_cookies import CookieSessions
from app.core.session_data import (
    CSRF_KEY,
    FLASHES,
    RETRY_AFTER_SECONDS,
    STORED_AT,
    USER_KEY,
    RecentSessions,
    Session,
    SessionStoreUnavailable,
    SkippedSession,
)
from app.core.session_index import index_key

log = logging.getLogger(__name__)

#: Seconds between two writes of an unchanged session (each renews its idle expiry).
REFRESH_INTERVAL = 60
_FLASH_FIELD = "_flash:"
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")

_codec_encode = msgspec.msgpack.Encoder().encode
_codec_decode = msgspec.msgpack.Decoder().decode


# Write the changed fields of a stored session: KEYS[1] the hash, KEYS[2] (optional) the index of
# its person's sessions; ARGV: idle seconds, "1" when the session must still exist, the number of
# fields to set, the session id and the time (for the index), those field/value pairs, fields to
# delete. The index scores each id with its last write and drops ids idle longer than a session lives.
_SAVE_SCRIPT = """
local key = KEYS[1]
if ARGV[2] == '1' and redis.call('EXISTS', key) == 0 then
  return 0
end
local n = tonumber(ARGV[3])
local first_deleted = 6 + 2 * n
if n > 0 then
  redis.call('HSET', key, unpack(ARGV, 6, first_deleted - 1))
end
if #ARGV >= first_deleted then
  redis.call('HDEL', key, unpack(ARGV, first_deleted, #ARGV))
end
if redis.call('EXISTS', key) == 1 then
  local idle = tonumber(ARGV[1])
  redis.call('EXPIRE', key, idle)
  if KEYS[2] then
    local now = tonumber(ARGV[5])
    redis.call('ZADD', KEYS[2], now, ARGV[4])
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - idle)
    redis.call('EXPIRE', KEYS[2], idle)
  end
end
return 1
"""


#: ``keys_for(identity)`` -> ``(keys, take)`` or None: Redis keys a signed-in person's request
#: reads anyway (their cached account), read in the round trip that loads the session; ``take``
#: gets their values when the session turns out to be that person's. Set by ``read_along_with_login``.
_READ_ALONG: dict[str, Callable[[str], tuple[list[str], Callable[[list], None]] | None] | None] = {
    "keys_for": None
}


def read_along_with_login(keys_for: Callable[[str], tuple[list[str], Callable[[list], None]] | None]) -> None:
    """Register what to read with a stored session, for the login (``_user_id``) it last held.

    The keys come from this process's last copy of the session (``RecentSessions``): a guess,
    checked against the session read in the same round trip; the values are handed over only
    when the guess was right. Used only when sessions and the cache share one Redis.
    """
    _READ_ALONG["keys_for"] = keys_for


class WorklaneSessionInterface(CookieSessions):
    """Opens and saves :class:`Session`: Redis for a login, a signed cookie for a visitor."""

    def __init__(self, client, key_prefix: str, outage_grace_seconds: float = 0, shares_cache: bool = False):
        self.client = client
        #: Sessions and the cache live in one Redis: reads of both can share a round trip.
        self.shares_cache = shares_cache
        self.key_prefix = key_prefix
        self._save_script = client.register_script(_SAVE_SCRIPT)
        self.outage_grace_seconds = outage_grace_seconds
        self.recent = RecentSessions()

    # --- names ------------------------------------------------------------------------------

    def _store_key(self, sid: str) -> str:
        return self.key_prefix + sid

    @staticmethod
    def _new_sid() -> str:
        return secrets.token_urlsafe(32)

    # --- opening ------------------------------------------------------------------------------

    def open_session(self, app: Flask, request) -> Session:
        path = request.path
        if path in _NO_SESSION_PATHS or path.startswith(_STATIC_PREFIX) or path.startswith(_API_PREFIX):
            return SkippedSession(app.secret_key)
        session = Session(app.secret_key, self._read_csrf_cookie(app, request))
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return session
        session.had_cookie = True
        if _SESSION_ID.fullmatch(value):
            self._load_stored(session, value, read_only=request.method in ("GET", "HEAD"))
        else:
            self._load_visitor(app, session, value)
        return session

    def _read_along(self, sid: str) -> tuple[bytes, list[str], Callable[[list], None]] | None:
        """What to read with this session: keys for the login its last copy held (see
        ``read_along_with_login``), with that login's raw value, to check the guess."""
        keys_for = _READ_ALONG["keys_for"]
        last = self.recent.last(sid) if keys_for is not None and self.shares_cache else None
        guess = last.get(USER_KEY.encode()) if last else None
        if guess is None:
            return None
        along = keys_for(_codec_decode(guess))
        return (guess, *along) if along else None

    def _read_stored(self, sid: str) -> tuple[dict, Callable[[], None] | None]:
        """The stored session's fields (one round trip, with what ``_read_along`` names), and
        how to hand over what was read along when the session held the login guessed."""
        along = self._read_along(sid)
        if along is None:
            return self.client.hgetall(self._store_key(sid)), None
        guess, keys, take = along
        fields, values = read_together(self.client, ("HGETALL", self._store_key(sid)), ("MGET", *keys))
        right = fields.get(USER_KEY.encode()) == guess
        return fields, (lambda: take(values)) if right else None

    def _load_stored(self, session: Session, sid: str, read_only: bool = False) -> None:
        hand_over = None
        try:
            try:
                fields, hand_over = self._read_stored(sid)
            except ResponseError as exc:
                if "WRONGTYPE" not in str(exc):
                    raise
                self._carry_over_whole_value(session, sid)
                return
        except RedisError as exc:
            session.unavailable = True
            copy = self.recent.recall(sid, self.outage_grace_seconds) if read_only else None
            if copy is None:
                log.warning("session store unavailable", extra={"error": str(exc)})
                return
            log.warning("session store unavailable; served from the last copy", extra={"error": str(exc)})
            session.served_from_copy = True
            fields = copy
        if not fields:
            self.recent.forget(sid)
            return  # ended or expired
        if not session.unavailable:
            self.recent.remember(
                sid, {name: raw for name, raw in fields.items() if not name.startswith(_FLASH_FIELD.encode())}
            )
        flashes = []
        for raw_name, raw in fields.items():
            name = raw_name.decode()
            if name.startswith(_FLASH_FIELD):
                flashes.append((name, raw))
            else:
                session.stored[name] = raw
                dict.__setitem__(session, name, _codec_decode(raw))
        flashes.sort()
        session.flash_fields = flashes
        if flashes:
            dict.__setitem__(session, FLASHES, [tuple(_codec_decode(raw)) for _, raw in flashes])
        session.sid, session.loaded = sid, True
        if hand_over is not None:
            hand_over()

    def _carry_over_whole_value(self, session: Session, sid: str) -> None:
        """A login stored whole (one msgpack value, before sessions were hashes) goes on under a
        new id, saved as a hash at the end of this request; anything else is dropped."""
        pipe = self.client.pipeline()
        pipe.get(self._store_key(sid))
        pipe.delete(self._store_key(sid))
        raw, _ = pipe.execute()
        try:
            data = _codec_decode(raw) if raw else None
        except msgspec.DecodeError:
            data = None
        if not isinstance(data, dict) or USER_KEY not in data:
            return
        data = {key: value for key, value in data.items() if key not in (CSRF_KEY, "_permanent")}
        if data.get(FLASHES):
            data[FLASHES] = [tuple(message) for message in data[FLASHES]]
        dict.update(session, data)
        session.sid = self._new_sid()

    # --- regenerating (login, logout) -----------------------------------------------------------

    def regenerate(self, session: Session) -> None:
        """A new id for this session (login, logout): the stored one is deleted, nothing is kept.

        The visitor's CSRF cookie is dropped too, so a token from before the change is refused.
        Raises :class:`SessionStoreUnavailable` when Redis cannot be reached: a login could not be
        stored, and a logout could not end the stored session.
        """
        try:
            if session.loaded:
                self.recent.forget(session.sid)
                self.client.delete(self._store_key(session.sid))
            else:
                self.client.ping()  # a login is about to be stored: is the store there?
        except RedisError as exc:
            log.warning("session store unavailable; sign-in or sign-out refused", extra={"error": str(exc)})
            raise SessionStoreUnavailable() from exc
        session.sid = self._new_sid()
        session.stored, session.flash_fields, session.loaded = {}, [], False
        session.csrf_cookie, session.csrf_cookie_changed = None, True
        session.modified = True

    # --- saving -------------------------------------------------------------------------------

    def save_session(self, app: Flask, session: Session, response) -> None:
        if isinstance(session, SkippedSession):
            return
        if session.accessed:
            vary_on(response.headers, "Cookie")
        self._save_csrf_cookie(app, session, response)
        if session.unavailable:
            return  # the stored session may be fine: keep its cookie for when Redis is back
        try:
            if session.logged_in:
                self._save_stored(app, session, response)
                return
            if session.loaded:  # the login ended without a new id: forget the stored session
                self.recent.forget(session.sid)
                self.client.delete(self._store_key(session.sid))
        except RedisError as exc:
            log.warning("session store unavailable; session not saved", extra={"error": str(exc)})
            return
        self._save_visitor(app, session, response)

    def _save_stored(self, app: Flask, session: Session, response) -> None:
        if session.sid is None:  # a login without regenerate(): never reuse a visitor's state
            session.sid = self._new_sid()
        now = int(time.time())
        changed, deleted = self._changes(session)
        if not (changed or deleted):
            stale = now - session.get(STORED_AT, 0) >= REFRESH_INTERVAL
            if not (stale and app.config["SESSION_REFRESH_EACH_REQUEST"]):
                return
        changed[STORED_AT] = _codec_encode(now)
        lifetime = int(app.permanent_session_lifetime.total_seconds())
        pairs = [part for item in changed.items() for part in item]
        args = [lifetime, "1" if session.loaded else "0", len(changed), session.sid, now, *pairs, *deleted]
        keys = [self._store_key(session.sid)]
        user_id = str(session.get(USER_KEY) or "").partition(":")[0]
        if user_id:
            keys.append(index_key(self.key_prefix, user_id))
        if not self._save_script(keys=keys, args=args):
            return  # ended meanwhile (logout elsewhere, expiry): do not bring it back
        response.set_cookie(
            self.get_cookie_name(app),
            session.sid,
            expires=self.get_expiration_time(app, session),
            **self._cookie_options(app),
        )

    @staticmethod
    def _changes(session: Session) -> tuple[dict[str, bytes], list[str]]:
        """The fields this request set (new raw values) and deleted, compared with what it loaded."""
        changed: dict[str, bytes] = {}
        for key, value in dict.items(session):
            if key in (FLASHES, CSRF_KEY):
                continue
            raw = _codec_encode(value)
            if session.stored.get(key) != raw:
                changed[key] = raw
        deleted = [key for key in session.stored if not dict.__contains__(session, key)]
        # Flash messages: the loaded ones stay unless this request showed them; new ones are added.
        loaded = [raw for _, raw in session.flash_fields]
        current = [_codec_encode(list(message)) for message in dict.get(session, FLASHES) or []]
        if current[: len(loaded)] == loaded:
            added = current[len(loaded) :]
        else:
            deleted += [name for name, _ in session.flash_fields]
            added = current
        for raw in added:
            changed[f"{_FLASH_FIELD}{time.time_ns():020d}:{secrets.token_hex(4)}"] = raw
        return changed, deleted


#: Endpoints served even when a login cannot be read: they do not depend on who is asking.
_SERVED_WITHOUT_SESSION = frozenset({"static", "health.healthz", "health.readyz"})
#: Their paths: a request for one of them neither reads nor writes a session (nor its cookies).
_NO_SESSION_PATHS = frozenset({"/healthz", "/readyz"})
_STATIC_PREFIX = "/static/"
#: The JSON API: a client sends its key with every request and never gets a cookie.
_API_PREFIX = "/api/"


def register_sessions(app: Flask, client) -> None:
    app.session_interface = WorklaneSessionInterface(
        client,
        app.config["SESSION_KEY_PREFIX"],
        app.config["SESSION_OUTAGE_GRACE_SECONDS"],
        shares_cache=app.config["REDIS_CACHE_URL"] == app.config["REDIS_QUEUE_URL"],
    )

    # A URL value preprocessor: these run before every before_request function, and before the
    # organization pages' own (which send a person who is not signed in to the login form).
    @app.url_value_preprocessor
    def _refuse_while_the_store_is_unavailable(endpoint, values):
        """A signed-in person whose session cannot be read gets a 503 page, not a logged-out one."""
        unreadable = getattr(session, "unavailable", False) and not session.served_from_copy
        if unreadable and endpoint not in _SERVED_WITHOUT_SESSION:
            raise SessionStoreUnavailable()

    @app.errorhandler(SessionStoreUnavailable)
    def _store_unavailable(exc: SessionStoreUnavailable):
        from app.core.errors import render_error

        body, code = render_error(503, exc.description)
        return body, code, {"Retry-After": str(RETRY_AFTER_SECONDS)}
