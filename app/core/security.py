"""Passwords, signed tokens and the security headers of every response."""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import Flask, abort, current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

# argon2id with the library's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()
# Verifying against this keeps "no such user" as slow as "wrong password".
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-effort check: a missing hash costs as much as a wrong password."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def credential_fingerprint(*parts: str) -> str:
    """A short digest that changes when any credential part changes (makes tokens single-use)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


# --- signed, expiring tokens for links in emails ---------------------------------------


class InvalidToken(ValueError):
    def __init__(self, expired: bool = False):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"worklane.{purpose}")


def make_token(purpose: str, payload: dict) -> str:
    return _serializer(purpose).dumps(payload)


def read_token(purpose: str, token: str, max_age_seconds: int) -> dict:
    try:
        return _serializer(purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise InvalidToken(expired=True) from exc
    except BadSignature as exc:
        raise InvalidToken() from exc


# --- the hosts this site answers to --------------------------------------------------------

#: Endpoints that answer whatever the Host: load balancers probe them by address.
ANY_HOST_ENDPOINTS = frozenset({"health.healthz", "health.readyz"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _normalized_host(host: str, scheme: str) -> str:
    """``Example.COM:443`` -> ``example.com`` for https (the scheme's own port is left out)."""
    host = host.strip().lower()
    name, colon, port = host.rpartition(":")
    if colon and "]" not in port and port == _DEFAULT_PORTS.get(scheme):
        return name
    return host


def served_hosts(config) -> frozenset[str]:
    """PUBLIC_URL's host and ALLOWED_HOSTS, normalized."""
    public = urlsplit(config["PUBLIC_URL"] or "")
    hosts = {_normalized_host(public.netloc, public.scheme)}
    for extra in config.get("ALLOWED_HOSTS") or ():
        hosts |= {_normalized_host(extra, scheme) for scheme in _DEFAULT_PORTS}
    return frozenset(hosts)


def register_host_check(app: Flask) -> None:
    """With ENFORCE_HOSTS (production), a request whose Host the site does not serve gets 400.

    Links in mail never come from the Host (``app.core.mail.public_url``); this refuses what
    would otherwise answer under any name pointed at the server (cache poisoning, links
    built by a future view).
    """
    if not app.config.get("ENFORCE_HOSTS"):
        return
    allowed = served_hosts(app.config)

    # An app-level URL value preprocessor: it runs before the blueprints' (the organization
    # lookup of /<org_slug>/) and before every before_request function.
    @app.url_value_preprocessor
    def _check_host(endpoint, values):
        if endpoint in ANY_HOST_ENDPOINTS:
            return
        host = _normalized_host(request.environ.get("HTTP_HOST") or "", request.scheme)
        if host not in allowed:
            abort(400, "This site is not served under that host name.")


def check_csrf_only_on_unsafe_methods(app: Flask) -> None:
    """Flask-WTF's CSRF check runs before every request, looks up whether the view is exempt,
    and only then finds that a GET (or any method outside ``WTF_CSRF_METHODS``) has nothing to
    check. Call after ``csrf.init_app``: its hook then runs only for the methods it checks."""
    functions = app.before_request_funcs.setdefault(None, [])
    for index, hook in enumerate(functions):
        if getattr(hook, "__module__", None) != "flask_wtf.csrf" or hook.__name__ != "csrf_protect":
            continue

        def csrf_protect(hook=hook):
            if request.method in app.config["WTF_CSRF_METHODS"]:
                return hook()
            return None

        functions[index] = csrf_protect


# --- response headers --------------------------------------------------------------------


def csp_nonce() -> str:
    """A fresh nonce per response, for the rare inline script or style."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


_CSP_PARTS = (
    "default-src 'self'; script-src 'self' 'nonce-",
    "'; style-src 'self' 'nonce-",
    "'; img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
)


def content_security_policy(nonce: str) -> str:
    return nonce.join(_CSP_PARTS)


#: Headers every response carries unless its view set them (name, value), in this order.
_FIXED_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Links carry tokens (reset, invitation): never send our URLs to another site.
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)


def register_security_headers(app: Flask) -> None:
    hsts = app.config.get("HSTS_SECONDS", 0)
    fixed = _FIXED_HEADERS
    if hsts:
        fixed = (*fixed, ("Strict-Transport-Security", f"max-age={hsts}; includeSubDomains"))
    fixed = tuple((name, name.lower(), value) for name, value in fixed)

    @app.context_processor
    def _nonce():
        return {"csp_nonce": csp_nonce}

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        present = {name.lower() for name, _value in headers.items()}
        if "content-security-policy" not in present:
            headers.add("Content-Security-Policy", content_security_policy(csp_nonce()))
        for name, lowered, value in fixed:
            if lowered not in present:
                headers.add(name, value)
        if "cache-control" not in present and response.mimetype == "text/html":
            # Pages may show private data: never store them in shared caches.
            headers["Cache-Control"] = "private, no-cache"
        return response


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula: text starting ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return gets a leading quote (``=1+2`` becomes ``'=1+2``)."""
    text = "" if value is None else str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text
