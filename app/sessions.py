"""Server-side sessions in Redis (Flask-Session) that degrade instead of failing.

The cookie holds only a random id; the data lives in Redis, so any web process can serve
any request. If Redis is briefly unreachable a request runs as a visitor with an empty
session (and is told so by the pages that need one) instead of answering 500.
"""

from __future__ import annotations

import logging
import time

from flask import Flask
from flask_session.redis import RedisSessionInterface
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


#: Seconds between two writes of an unchanged session (each renews its idle expiry).
REFRESH_INTERVAL = 60
_STORED_AT = "_stored_at"


class ResilientRedisSessionInterface(RedisSessionInterface):
    def should_set_storage(self, app, session) -> bool:
        """Write a changed session; an unchanged one only to renew its idle expiry, once a minute.

        The idle timeout is thereby exact to within ``REFRESH_INTERVAL`` seconds, and a page
        view does not cost a write.
        """
        if session.modified:
            return True
        if not app.config["SESSION_REFRESH_EACH_REQUEST"]:
            return False
        return time.time() - session.get(_STORED_AT, 0) >= REFRESH_INTERVAL

    def _upsert_session(self, session_lifetime, session, store_id) -> None:
        session[_STORED_AT] = int(time.time())
        super()._upsert_session(session_lifetime, session, store_id)

    def open_session(self, app, request):
        try:
            return super().open_session(app, request)
        except RedisError as exc:
            log.warning("session store unavailable; serving without a session", extra={"error": str(exc)})
            return self.session_class(sid=self._generate_sid(self.sid_length), permanent=self.permanent)

    def save_session(self, app, session, response):
        try:
            super().save_session(app, session, response)
        except RedisError as exc:
            log.warning("session store unavailable; session not saved", extra={"error": str(exc)})


def register_sessions(app: Flask, client) -> None:
    app.session_interface = ResilientRedisSessionInterface(
        app,
        client=client,
        key_prefix=app.config["SESSION_KEY_PREFIX"],
        use_signer=False,
        permanent=app.config["SESSION_PERMANENT"],
        sid_length=32,
        serialization_format="msgpack",
    )
