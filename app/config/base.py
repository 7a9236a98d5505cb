"""``BaseConfig``: the settings shared by every environment, read from environment variables and
checked before the app starts."""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from app.config.settings import (
    PROJECT_ROOT,
    AccountSettings,
    DatabaseSettings,
    JobSettings,
    RedisSettings,
    SessionSettings,
    SiteSettings,
    WebSettings,
)
from app.core.encryption import parse_keys
from app.core.mailserver import MailServerError, mail_from_domain, parse_smtp_url


class ConfigError(RuntimeError):
    """The configuration cannot run: a required setting is missing or invalid."""


def normalize_database_url(url: str) -> str:
    """Accept the URL spellings operators paste and pick the psycopg 3 driver.

    ``postgres://`` (Heroku) and plain ``postgresql://`` both become
    ``postgresql+psycopg://``; any other URL is returned unchanged.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _lower_list(raw: str | None, trailing: str = "") -> frozenset[str]:
    """Comma-separated names (emails, hosts), lower-case, with ``trailing`` characters cut."""
    return frozenset(part.strip().lower().rstrip(trailing) for part in (raw or "").split(",") if part.strip())


def _int(environ, name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


class BaseConfig(
    DatabaseSettings, RedisSettings, SiteSettings, WebSettings, SessionSettings, AccountSettings, JobSettings
):
    """Settings shared by every environment; subclasses change what differs."""

    ENV_NAME = "base"
    DEBUG = False
    TESTING = False

    SECRET_KEY: str | None = None
    #: Fernet keys, newest first, that encrypt secrets stored in the database (app/core/encryption.py).
    ENCRYPTION_KEYS: tuple[str, ...] = ()
    #: Signs the audit log's checkpoints (app/core/audit_chain.py); never stored in the database.
    AUDIT_SIGNING_KEY: str | None = None
    INSTANCE_PATH = str(PROJECT_ROOT / "instance")

    LOG_LEVEL = "INFO"
    LOG_JSON = True

    @classmethod
    def from_env(cls, environ=None) -> BaseConfig:
        """Build an instance of this config from environment variables."""
        environ = os.environ if environ is None else environ
        config = cls()
        config.INSTANCE_PATH = environ.get("WORKLANE_INSTANCE_PATH") or cls.INSTANCE_PATH
        config.SECRET_KEY = environ.get("SECRET_KEY") or None
        try:
            config.ENCRYPTION_KEYS = parse_keys(environ.get("ENCRYPTION_KEYS"))
        except ValueError as exc:
            raise ConfigError(
                "ENCRYPTION_KEYS must be Fernet keys, comma-separated, newest first (make one with: "
                'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
            ) from exc
        config.AUDIT_SIGNING_KEY = environ.get("AUDIT_SIGNING_KEY") or None
        database_url = environ.get("DATABASE_URL")
        config.SQLALCHEMY_DATABASE_URI = (
            normalize_database_url(database_url) if database_url else cls.default_database_url(config)
        )
        migration_url = environ.get("DATABASE_MIGRATION_URL")
        config.DATABASE_MIGRATION_URL = normalize_database_url(migration_url) if migration_url else None
        config.DATABASE_POOLER = (environ.get("DATABASE_POOLER") or "").strip().lower() or None
        replica_url = environ.get("DATABASE_REPLICA_URL")
        config.DATABASE_REPLICA_URL = normalize_database_url(replica_url) if replica_url else None
        config.REPLICA_RETRY_SECONDS = _int(environ, "REPLICA_RETRY_SECONDS", cls.REPLICA_RETRY_SECONDS)
        redis_url = environ.get("REDIS_URL") or None
        config.REDIS_QUEUE_URL = environ.get("REDIS_QUEUE_URL") or redis_url
        config.REDIS_CACHE_URL = environ.get("REDIS_CACHE_URL") or redis_url
        config.REDIS_URL = config.REDIS_QUEUE_URL
        config.SMTP_URL = environ.get("SMTP_URL") or None
        config.MAIL_FROM = environ.get("MAIL_FROM") or cls.MAIL_FROM
        config.PUBLIC_URL = (environ.get("PUBLIC_URL") or cls.PUBLIC_URL or "").rstrip("/") or None
        config.ALLOWED_HOSTS = _lower_list(environ.get("ALLOWED_HOSTS"), "/")
        config.OPERATOR_EMAILS = _lower_list(environ.get("OPERATOR_EMAILS"))
        config.METRICS_TOKEN = environ.get("METRICS_TOKEN") or None
        config.DEFAULT_PLAN = (environ.get("DEFAULT_PLAN") or cls.DEFAULT_PLAN).strip().lower()
        config.SSO_ALLOW_PRIVATE_ISSUERS = _bool(
            environ.get("SSO_ALLOW_PRIVATE_ISSUERS"), cls.SSO_ALLOW_PRIVATE_ISSUERS
        )
        servers = (environ.get("DNS_NAMESERVERS") or "").split(",")
        config.DNS_NAMESERVERS = tuple(s.strip() for s in servers if s.strip()) or cls.DNS_NAMESERVERS
        networks = environ.get("OUTBOUND_ALLOWED_NETWORKS")
        config.OUTBOUND_ALLOWED_NETWORKS = (
            tuple(
                str(ipaddress.ip_network(n.strip(), strict=False)) for n in networks.split(",") if n.strip()
            )
            if networks is not None
            else cls.OUTBOUND_ALLOWED_NETWORKS
        )
        config.DEV_MAIL_DIR = environ.get("DEV_MAIL_DIR") or str(Path(config.INSTANCE_PATH) / "mail")
        files = environ.get("FILE_STORAGE_PATH")
        config.FILE_STORAGE_PATH = files or str(Path(config.INSTANCE_PATH) / "files")
        config.LOG_LEVEL = (environ.get("LOG_LEVEL") or cls.LOG_LEVEL).upper()
        config.LOG_JSON = _bool(environ.get("LOG_JSON"), cls.LOG_JSON)
        config.RQ_DEFAULT_JOB_TIMEOUT = _int(environ, "RQ_JOB_TIMEOUT", cls.RQ_DEFAULT_JOB_TIMEOUT)
        for name in (
            "JOB_HEARTBEAT_SECONDS",
            "JOB_LOST_AFTER_SECONDS",
            "JOB_MAINTENANCE_SECONDS",
            "JOB_KILL_GRACE_SECONDS",
            "OUTBOX_SWEEP_AFTER_SECONDS",
            "OUTBOX_LEASE_SECONDS",
        ):
            setattr(config, name, _int(environ, name, getattr(cls, name)))
        config.PROXY_COUNT = _int(environ, "PROXY_COUNT", cls.PROXY_COUNT)
        for name in ("DATABASE_CONNECT_TIMEOUT", "DATABASE_CONNECT_RETRY_SECONDS"):
            setattr(config, name, _int(environ, name, getattr(cls, name)))
        config.EXPORT_RETENTION_DAYS = _int(environ, "EXPORT_RETENTION_DAYS", cls.EXPORT_RETENTION_DAYS)
        config.SESSION_IDLE_MINUTES = _int(environ, "SESSION_IDLE_MINUTES", cls.SESSION_IDLE_MINUTES)
        config.SESSION_ABSOLUTE_HOURS = _int(environ, "SESSION_ABSOLUTE_HOURS", cls.SESSION_ABSOLUTE_HOURS)
        grace = _int(environ, "SESSION_OUTAGE_GRACE_SECONDS", cls.SESSION_OUTAGE_GRACE_SECONDS)
        config.SESSION_OUTAGE_GRACE_SECONDS = grace
        config.finish(environ)
        config.validate()
        return config

    @classmethod
    def default_database_url(cls, config) -> str | None:
        return None

    def finish(self, environ) -> None:
        """Fill in derived settings (hook for subclasses)."""
        self.use_redis(self.REDIS_QUEUE_URL, self.REDIS_CACHE_URL)
        self.PERMANENT_SESSION_LIFETIME = timedelta(minutes=self.SESSION_IDLE_MINUTES)
        self.SQLALCHEMY_ENGINE_OPTIONS = self.engine_options()
        if self.DATABASE_REPLICA_URL:
            from app.core.replica import REPLICA, replica_bind

            connect_args = self.SQLALCHEMY_ENGINE_OPTIONS.get("connect_args", {})
            self.SQLALCHEMY_BINDS = {REPLICA: replica_bind(self.DATABASE_REPLICA_URL, connect_args)}

    def engine_options(self) -> dict:
        """SQLAlchemy engine options.

        Every pooled connection is checked before use (``app.core.database``, on checkout, in
        place of SQLAlchemy's ``pool_pre_ping``): the first one found dead after a server restart
        makes SQLAlchemy discard every connection made before, so one request after a restart
        finds them all gone, not one request per connection. On PostgreSQL, new connections give
        up after ``DATABASE_CONNECT_TIMEOUT`` seconds, TCP keepalives notice a server that
        vanished under a long statement, and connections are replaced after
        ``DATABASE_POOL_RECYCLE_SECONDS``.
        """
        options: dict = {}
        if (self.SQLALCHEMY_DATABASE_URI or "").startswith("postgresql"):
            options["pool_recycle"] = self.DATABASE_POOL_RECYCLE_SECONDS
            options["connect_args"] = {
                "connect_timeout": self.DATABASE_CONNECT_TIMEOUT,
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            }
        if self.DATABASE_POOLER == "transaction" and (self.SQLALCHEMY_DATABASE_URI or "").startswith(
            "postgres"
        ):
            # Each transaction may run on another server connection: psycopg prepares nothing
            # on the server (the statement would be missing on the next one).
            options["connect_args"] = {**options.get("connect_args", {}), "prepare_threshold": None}
        return options

    def use_redis(self, queue_url: str | None, cache_url: str | None = None) -> None:
        """Point the queues (and sessions) and the cache (and rate limits) at their Redis servers."""
        self.REDIS_URL = self.REDIS_QUEUE_URL = queue_url
        self.REDIS_CACHE_URL = cache_url or queue_url
        self.CACHE_REDIS_URL = self.RATELIMIT_STORAGE_URI = self.REDIS_CACHE_URL
        if self.REDIS_CACHE_URL:
            from app.core.redis_breaker import client_options

            url, connect, read = self.REDIS_CACHE_URL, self.REDIS_CONNECT_TIMEOUT, self.REDIS_SOCKET_TIMEOUT
            options = client_options(url, connect, read)
            self.CACHE_OPTIONS = dict(options)
            self.RATELIMIT_STORAGE_OPTIONS = dict(options)

    def validate(self) -> None:
        """Raise ConfigError when this config cannot run."""
        missing = [name for name, value in self.required_settings() if not value]
        if missing:
            raise ConfigError(
                f"{self.ENV_NAME} configuration is missing required environment "
                f"variable(s): {', '.join(missing)}"
            )
        try:
            if self.SMTP_URL:
                parse_smtp_url(self.SMTP_URL)
            mail_from_domain(self.MAIL_FROM)
        except MailServerError as exc:
            raise ConfigError(str(exc)) from exc
        if self.DATABASE_CONNECT_TIMEOUT < 1:
            raise ConfigError("DATABASE_CONNECT_TIMEOUT must be at least 1 (0 would wait forever)")
        for name in ("REDIS_QUEUE_URL", "REDIS_CACHE_URL"):
            url = getattr(self, name)
            if url and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
                raise ConfigError(f"{name} must be a redis://, rediss:// or unix:// URL, got {url!r}")
        if self.DATABASE_POOLER not in (None, "transaction"):
            raise ConfigError(f"DATABASE_POOLER must be 'transaction' or unset, got {self.DATABASE_POOLER!r}")
        if min(self.JOB_HEARTBEAT_SECONDS, self.JOB_MAINTENANCE_SECONDS) < 1:
            raise ConfigError("JOB_HEARTBEAT_SECONDS and JOB_MAINTENANCE_SECONDS must be at least 1")
        if self.JOB_LOST_AFTER_SECONDS < 2 * self.JOB_HEARTBEAT_SECONDS:
            raise ConfigError("JOB_LOST_AFTER_SECONDS must be at least twice JOB_HEARTBEAT_SECONDS")
        if self.DATABASE_REPLICA_URL and not (
            self.DATABASE_REPLICA_URL.startswith("postgresql")
            and (self.SQLALCHEMY_DATABASE_URI or "").startswith("postgresql")
        ):
            raise ConfigError("DATABASE_REPLICA_URL is a PostgreSQL replica of a PostgreSQL DATABASE_URL")
        public = urlsplit(self.PUBLIC_URL or "")
        if public.scheme not in ("http", "https") or not public.netloc or public.query or public.fragment:
            raise ConfigError(
                "PUBLIC_URL must be an http(s) address like https://worklane.example.com, "
                f"got {self.PUBLIC_URL!r}"
            )

    def required_settings(self) -> list[tuple[str, object]]:
        """(environment variable, value) pairs that must be set to run."""
        return [
            ("SECRET_KEY", self.SECRET_KEY),
            ("AUDIT_SIGNING_KEY", self.AUDIT_SIGNING_KEY),
            ("DATABASE_URL", self.SQLALCHEMY_DATABASE_URI),
            ("REDIS_URL (or REDIS_QUEUE_URL)", self.REDIS_QUEUE_URL),
        ]
