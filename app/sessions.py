"""Server-side sessions in Redis (Flask-Session) that degrade instead of failing.

The cookie holds only a random id; the data lives in Redis, so any web process can serve
any request. If Redis is briefly unreachable a request runs as a visitor with an empty
session (and is told so by the pages that need one) instead of answering 500.
"""

from __future__ import annotations

import logging

from flask import Flask
from flask_session.redis import RedisSessionInterface
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class ResilientRedisSessionInterface(RedisSessionInterface):
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
