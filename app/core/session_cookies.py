"""The cookie half of the sessions: a visitor's session, carried in the session cookie signed
with the secret key (nothing in Redis, so anonymous traffic never grows it), and the cookie that
holds a visitor's CSRF secret."""

from __future__ import annotations

import msgspec
from flask import Flask
from flask.sessions import SessionInterface
from itsdangerous import BadSignature, Signer, URLSafeTimedSerializer

from app.core.session_data import FLASHES, STORED_AT, USER_KEY, Session

#: Flask-Login's bookkeeping, meaningless without a login: a visitor's cookie does not carry it.
_LOGIN_ONLY_KEYS = frozenset({"_fresh", "_id", "_remember", "_remember_seconds", STORED_AT})
#: A cookie holds about 4 KB: a visitor's cookie keeps only the latest flash messages.
_VISITOR_FLASHES = 5


class CookieSessions(SessionInterface):
    """Reading and writing a visitor's session cookie and the CSRF cookie (the parts of
    ``WorklaneSessionInterface`` that need no Redis)."""

    @staticmethod
    def _visitor_serializer(app: Flask) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(app.secret_key, salt="worklane.visitor-session")

    @staticmethod
    def _csrf_signer(app: Flask) -> Signer:
        return Signer(app.secret_key, salt="worklane.csrf-cookie")

    def _cookie_options(self, app: Flask) -> dict:
        return {
            "domain": self.get_cookie_domain(app),
            "path": self.get_cookie_path(app),
            "secure": self.get_cookie_secure(app),
            "httponly": True,
            "samesite": self.get_cookie_samesite(app),
        }

    def _read_csrf_cookie(self, app: Flask, request) -> str | None:
        value = request.cookies.get(app.config["CSRF_COOKIE_NAME"])
        if not value:
            return None
        try:
            return self._csrf_signer(app).unsign(value).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    def _load_visitor(self, app: Flask, session: Session, value: str) -> None:
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data = self._visitor_serializer(app).loads(value, max_age=max_age)
        except BadSignature:
            return
        if isinstance(data, dict):
            data = {key: value for key, value in data.items() if key != USER_KEY}
            session.visitor_data = dict(data)
            if data.get(FLASHES):
                data[FLASHES] = [tuple(message) for message in data[FLASHES]]
            dict.update(session, data)

    def _save_csrf_cookie(self, app: Flask, session: Session, response) -> None:
        if not session.csrf_cookie_changed:
            return
        name = app.config["CSRF_COOKIE_NAME"]
        options = self._cookie_options(app)
        if session.csrf_cookie:
            value = self._csrf_signer(app).sign(session.csrf_cookie).decode()
            response.set_cookie(name, value, **options)
        else:
            response.delete_cookie(name, **options)

    def _save_visitor(self, app: Flask, session: Session, response) -> None:
        name = self.get_cookie_name(app)
        data = {key: value for key, value in dict.items(session) if key not in _LOGIN_ONLY_KEYS}
        if data.get(FLASHES):
            data[FLASHES] = data[FLASHES][-_VISITOR_FLASHES:]
        if not data:
            if session.had_cookie:
                response.delete_cookie(name, **self._cookie_options(app))
            return
        if msgspec.json.encode(data) == msgspec.json.encode(session.visitor_data):
            return  # unchanged: the cookie the browser has is still right
        value = self._visitor_serializer(app).dumps(data)
        response.set_cookie(
            name, value, expires=self.get_expiration_time(app, session), **self._cookie_options(app)
        )
