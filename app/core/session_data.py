"""The session of one request (``flask.session``), and the stored sessions a process read last.

The **CSRF secret** that Flask-WTF reads as ``session["csrf_token"]`` is never stored: for a
logged-in session it is an HMAC of the session id (the same for every parallel request, new at
each login); a visitor gets a random one in a cookie of its own (signed double submit: the form
carries the token signed by Flask-WTF, the cookie the value it must match).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict

from flask.sessions import SessionMixin
from werkzeug.datastructures import CallbackDict
from werkzeug.exceptions import ServiceUnavailable

#: The field of a stored session that says when it was last written (seconds since the epoch).
STORED_AT = "_stored_at"
#: The key that makes a session worth storing: Flask-Login's identity of the logged-in person.
USER_KEY = "_user_id"
#: Flask-WTF's session key for the CSRF secret (``WTF_CSRF_FIELD_NAME``); computed, never stored.
CSRF_KEY = "csrf_token"
#: Flask's session key of the flash messages (in a stored session, each is a field of its own).
FLASHES = "_flashes"

#: Seconds a person is asked to wait when the session store is unreachable.
RETRY_AFTER_SECONDS = 5


class SessionStoreUnavailable(ServiceUnavailable):
    """Redis, where logins are kept, cannot be reached: a 503 page with ``Retry-After``."""

    description = "Worklane cannot reach its session store for a moment. Try again in a few seconds."

    def __init__(self, description: str | None = None):
        super().__init__(description, retry_after=RETRY_AFTER_SECONDS)


class Session(CallbackDict, SessionMixin):
    """The session of one request (``flask.session``)."""

    def __init__(self, secret_key: str, csrf_cookie: str | None = None):
        def on_update(self) -> None:
            self.modified = True
            self.accessed = True

        super().__init__(None, on_update)
        self.modified = self.accessed = False
        self._secret_key = secret_key
        #: Id of the stored session (None: a visitor, or a session not stored yet).
        self.sid: str | None = None
        #: The stored fields as loaded (raw values), and the loaded flash messages' fields.
        self.stored: dict[str, bytes] = {}
        self.flash_fields: list[tuple[str, bytes]] = []
        #: The stored session existed when the request began (saves must not recreate it).
        self.loaded = False
        #: The request came with a session cookie / Redis could not be read / and the stored
        #: session was filled in from this process's last copy (read-only).
        self.had_cookie = False
        self.unavailable = False
        self.served_from_copy = False
        #: The visitor data the cookie carried, to write the cookie only when it changes.
        self.visitor_data: dict | None = None
        self.csrf_cookie = csrf_cookie
        self.csrf_cookie_changed = False
        #: The CSRF secret of a logged-in session, with the session id it was computed for.
        self._csrf_of: tuple[str | None, str | None] = (None, None)

    @property
    def permanent(self) -> bool:
        return True

    @permanent.setter
    def permanent(self, value: bool) -> None:
        """Every session lasts its idle timeout; the flag is not stored."""

    @property
    def logged_in(self) -> bool:
        return dict.__contains__(self, USER_KEY)

    # The CSRF secret is read through the mapping (Flask-WTF), but is computed, not kept.

    def _csrf_secret(self) -> str | None:
        if self.logged_in and self.sid:
            sid, secret = self._csrf_of
            if sid != self.sid:  # read several times a request; new with each session id
                secret = _csrf_secret_of(self._secret_key, self.sid)
                self._csrf_of = (self.sid, secret)
            return secret
        return self.csrf_cookie

    def __contains__(self, key) -> bool:
        if key == CSRF_KEY:
            return self._csrf_secret() is not None
        self.accessed = True
        return super().__contains__(key)

    def __getitem__(self, key):
        if key == CSRF_KEY:
            secret = self._csrf_secret()
            if secret is None:
                raise KeyError(key)
            return secret
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key == CSRF_KEY:
            secret = self._csrf_secret()
            return default if secret is None else secret
        self.accessed = True
        return super().get(key, default)

    def setdefault(self, key, default=None):
        self.accessed = True
        return super().setdefault(key, default)

    def __setitem__(self, key, value) -> None:
        if key == CSRF_KEY:
            # Flask-WTF draws a secret for a visitor who has none yet: it goes in the cookie.
            if not (self.logged_in and self.sid):
                self.csrf_cookie, self.csrf_cookie_changed = str(value), True
            return
        super().__setitem__(key, value)


#: The CSRF secrets of logged-in sessions this process computed, by secret key and session id (at
#: most ``_KEPT_SECRETS``, then it starts afresh): a session's every page reads its secret.
_CSRF_SECRETS: dict[tuple[str, str], str] = {}
_KEPT_SECRETS = 10_000


def _csrf_secret_of(secret_key: str, sid: str) -> str:
    """The CSRF secret of the logged-in session ``sid``: an HMAC of its id, computed once per process."""
    secret = _CSRF_SECRETS.get((secret_key, sid))
    if secret is None:
        message = f"worklane.csrf:{sid}".encode()
        secret = hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()
        if len(_CSRF_SECRETS) >= _KEPT_SECRETS:
            _CSRF_SECRETS.clear()
        _CSRF_SECRETS[(secret_key, sid)] = secret
    return secret


class RecentSessions:
    """The stored sessions this process read last (their fields, not their flash messages), to
    serve pages from while Redis cannot be read; the least recently read go first."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._items: OrderedDict[str, tuple[float, dict[str, bytes]]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, sid: str, fields: dict[str, bytes]) -> None:
        with self._lock:
            self._items[sid] = (time.monotonic(), fields)
            self._items.move_to_end(sid)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def recall(self, sid: str, max_age: float) -> dict[str, bytes] | None:
        with self._lock:
            item = self._items.get(sid)
        if item is None or time.monotonic() - item[0] > max_age:
            return None
        return item[1]

    def last(self, sid: str) -> dict[str, bytes] | None:
        """The fields this process last read of a session, however old (None if it read none)."""
        item = self._items.get(sid)
        return item[1] if item is not None else None

    def forget(self, sid: str | None) -> None:
        with self._lock:
            self._items.pop(sid, None)


class SkippedSession(Session):
    """The session of a request that uses none (a health check, a static file): empty, never
    read from Redis or the cookie, never saved; the cookies the client sent are left as they are."""

    def __init__(self, secret_key: str):
        super().__init__(secret_key)
