"""The environments: development (a laptop), testing (the test suite) and production."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from app.config.base import BaseConfig, ConfigError


class DevelopmentConfig(BaseConfig):
    """A laptop: SQLite under instance/, a generated secret, readable logs allowed."""

    ENV_NAME = "development"
    DEBUG = False  # the debugger is opt-in with `flask run --debug`
    SSO_ALLOW_PRIVATE_ISSUERS = True  # a provider tried out on the same machine
    OUTBOUND_ALLOWED_NETWORKS = ("127.0.0.0/8", "::1/128")  # a webhook receiver on the same machine

    @classmethod
    def default_database_url(cls, config) -> str:
        return "sqlite:///" + str(Path(config.INSTANCE_PATH) / "worklane.db")

    def finish(self, environ) -> None:
        if not self.SECRET_KEY:
            self.SECRET_KEY = development_secret_key(Path(self.INSTANCE_PATH))
        self.ENCRYPTION_KEYS = self.ENCRYPTION_KEYS or (derived_encryption_key(self.SECRET_KEY),)
        if not self.AUDIT_SIGNING_KEY:
            self.AUDIT_SIGNING_KEY = derived_audit_signing_key(self.SECRET_KEY)
        super().finish(environ)

    def validate(self) -> None:
        # Development runs without REDIS_URL until something needs Redis;
        # `make run` always provides one.
        if not self.REDIS_QUEUE_URL:
            self.use_redis("redis://127.0.0.1:6379/0", self.REDIS_CACHE_URL)
        super().validate()


class TestingConfig(BaseConfig):
    """The test suite: URLs come from the test command, never a developer's database."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-not-for-production-use-0123456789"
    WTF_CSRF_ENABLED = True
    LOG_LEVEL = "WARNING"
    SCHEDULER_TICK_SECONDS = 1
    # Short periods so the tests that kill workers see recovery in seconds.
    JOB_HEARTBEAT_SECONDS = 1
    JOB_LOST_AFTER_SECONDS = 4
    JOB_MAINTENANCE_SECONDS = 1
    JOB_KILL_GRACE_SECONDS = 5
    SSO_ALLOW_PRIVATE_ISSUERS = True  # the tests' OpenID Provider listens on loopback
    OUTBOUND_ALLOWED_NETWORKS = ("127.0.0.1/32",)  # the tests' webhook receiver
    #: Unlimited, so tests build organizations of any size; the quota tests choose a plan.
    DEFAULT_PLAN = "business"

    def finish(self, environ) -> None:
        self.SECRET_KEY = environ.get("SECRET_KEY") or TestingConfig.SECRET_KEY
        self.ENCRYPTION_KEYS = self.ENCRYPTION_KEYS or (derived_encryption_key(self.SECRET_KEY),)
        given = environ.get("AUDIT_SIGNING_KEY")
        self.AUDIT_SIGNING_KEY = given or derived_audit_signing_key(self.SECRET_KEY)
        super().finish(environ)


class ProductionConfig(BaseConfig):
    """Real traffic: every secret and URL must be given; cookies are HTTPS-only."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    # __Host- cookies are Secure, host-only and Path=/: no subdomain can set or read them.
    SESSION_COOKIE_NAME = "__Host-worklane_session"
    CSRF_COOKIE_NAME = "__Host-worklane_csrf"
    PREFERRED_URL_SCHEME = "https"
    HSTS_SECONDS = 2 * 365 * 24 * 3600
    MIN_SECRET_KEY_LENGTH = 32
    #: No default: links in mail must point at the real site.
    PUBLIC_URL = None
    ENFORCE_HOSTS = True

    def required_settings(self) -> list[tuple[str, object]]:
        return [
            *super().required_settings(),
            ("SMTP_URL", self.SMTP_URL),
            ("PUBLIC_URL", self.PUBLIC_URL),
            ("ENCRYPTION_KEYS", self.ENCRYPTION_KEYS),
        ]

    def validate(self) -> None:
        super().validate()
        if len(self.SECRET_KEY) < self.MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"SECRET_KEY must be at least {self.MIN_SECRET_KEY_LENGTH} characters in production "
                '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        if len(self.AUDIT_SIGNING_KEY) < self.MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"AUDIT_SIGNING_KEY must be at least {self.MIN_SECRET_KEY_LENGTH} characters in production"
            )
        if hmac.compare_digest(self.AUDIT_SIGNING_KEY, self.SECRET_KEY):
            raise ConfigError("AUDIT_SIGNING_KEY must differ from SECRET_KEY")
        if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            raise ConfigError("production needs a PostgreSQL DATABASE_URL, not SQLite")


def development_secret_key(instance_path: Path) -> str:
    """Return the development secret kept in ``instance/secret_key``, creating it once."""
    path = instance_path / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def derived_encryption_key(secret_key: str) -> str:
    """Development and tests: a Fernet key derived from the secret key, so no key is kept in the
    repository and none need be set (production must set ``ENCRYPTION_KEYS``)."""
    digest = hashlib.sha256(b"worklane.encryption-key:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def derived_audit_signing_key(secret_key: str) -> str:
    """Development and tests: the audit checkpoints' key, derived from the secret key.

    Production is given a key of its own (``AUDIT_SIGNING_KEY``), kept apart from the database
    and from ``SECRET_KEY``."""
    return hmac.new(secret_key.encode(), b"worklane.audit-signing-key", hashlib.sha256).hexdigest()
