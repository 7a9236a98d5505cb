"""A browser without a browser: real HTTP requests to a served app, with one cookie jar."""

from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from tests.accounts import PASSWORD
from tests.conftest import csrf_token_from


@dataclass
class Page:
    status: int
    headers: dict
    body: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class HttpBrowser:
    """One person's browser: a single cookie jar shared by every tab (thread); redirects are
    reported, not followed."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def open(self, path: str, data: dict | None = None) -> Page:
        """GET ``path``, or POST ``data`` form-encoded to it."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base_url + path, data=body, timeout=60) as response:
                return Page(response.status, dict(response.headers), response.read().decode())
        except urllib.error.HTTPError as exc:
            return Page(exc.code, dict(exc.headers), exc.read().decode())

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def log_in(self, email: str) -> None:
        token = csrf_token_from(self.open("/login").body)
        response = self.open("/login", {"csrf_token": token, "email": email, "password": PASSWORD})
        assert response.status == 303, response.body
