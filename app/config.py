"""Configuration, read from environment variables.

A config is an object built *before* the app exists and handed to
``create_app(config)``: tests build their own without touching the
environment, and the entry points (``wsgi.py``, the ``flask`` CLI) build one
from the environment with :func:`config_from_env`.

Environment variables (see the README for the whole table):

``WORKLANE_ENV``   ``development`` (default), ``production`` or ``testing``
``SECRET_KEY``     required in production; development keeps its own under ``instance/``
``DATABASE_URL``   SQLAlchemy/Heroku-style URL; development defaults to SQLite in ``instance/``
``DATABASE_MIGRATION_URL``  the table owner's URL for ``flask db upgrade`` (default: DATABASE_URL)
``DATABASE_POOLER``  ``transaction`` when DATABASE_URL goes through PgBouncer in transaction mode
``DATABASE_REPLICA_URL``  a streaming replica of DATABASE_URL that page views read from (optional)
``REDIS_URL``      required in production (or REDIS_QUEUE_URL); ``make run`` starts a private Redis
                   when unset
``REDIS_QUEUE_URL``  the Redis of queues, sessions and locks (default REDIS_URL): must never evict
``REDIS_CACHE_URL``  the Redis of the cache and rate limits (default REDIS_URL): may evict
``SMTP_URL``       outgoing mail server; required in production; ``make run`` starts a local sink
``MAIL_FROM``      the From of every mail (default ``Worklane <no-reply@worklane.localhost>``)
``PUBLIC_URL``     the site's address; every link in mail is built from it (default ``http://127.0.0.1:5000``)
``ALLOWED_HOSTS``  production: comma-separated extra Host names served besides PUBLIC_URL's
``OPERATOR_EMAILS``  comma-separated accounts that see the operator console
``METRICS_TOKEN``  bearer token for ``/metrics`` (unset: ``/metrics`` answers 404)
``DATABASE_CONNECT_TIMEOUT``  PostgreSQL: seconds to wait for a new connection (default 5)
``DATABASE_CONNECT_RETRY_SECONDS``  PostgreSQL: how long a refused connection is tried again (default 3)
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from app.core.mailserver import MailServerError, mail_from_domain, parse_smtp_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


class BaseConfig:
    """Settings shared by every environment; subclasses change what differs."""

    ENV_NAME = "base"
    DEBUG = False
    TESTING = False

    SECRET_KEY: str | None = None
    INSTANCE_PATH = str(PROJECT_ROOT / "instance")

    SQLALCHEMY_DATABASE_URI: str | None = None
    #: Migrations run as the table owner; the app connects as a role that cannot bypass RLS.
    DATABASE_MIGRATION_URL: str | None = None
    #: Filled in by ``finish`` from the URL (see ``engine_options``).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    #: PostgreSQL: seconds to wait for a new connection, so a server that does not answer (a host
    #: gone from the network) costs a request a quick 503 instead of a thread held for minutes.
    DATABASE_CONNECT_TIMEOUT = 5
    #: PostgreSQL: seconds a new connection keeps trying while the server refuses it (restarting,
    #: starting up), so a request arriving during a restart waits rather than failing.
    DATABASE_CONNECT_RETRY_SECONDS = 3
    #: PostgreSQL: a pooled connection older than this is replaced before use (firewalls and
    #: proxies drop long-idle connections without telling either side).
    DATABASE_POOL_RECYCLE_SECONDS = 1800
    SQLALCHEMY_RECORD_QUERIES = False
    #: Page views read from this streaming replica when set (app/core/replica.py) …
    DATABASE_REPLICA_URL: str | None = None
    #: … and leave it alone this long in a process after it could not be reached.
    REPLICA_RETRY_SECONDS = 10
    #: ``transaction``: DATABASE_URL reaches PostgreSQL through a pooler in transaction mode
    #: (PgBouncer), where each transaction may run on another server connection, so psycopg
    #: prepares no statement on the server (it would be missing on the next one). None: direct.
    DATABASE_POOLER: str | None = None

    #: The queue Redis: RQ queues, sessions, locks (noeviction, AOF). ``REDIS_URL`` is the same URL.
    REDIS_URL: str | None = None
    REDIS_QUEUE_URL: str | None = None
    #: The cache Redis: the cache and rate-limit counters, disposable (may evict).
    REDIS_CACHE_URL: str | None = None
    #: Timeouts (seconds) of the clients a web request uses (app/core/redis_breaker.py): a Redis
    #: that hangs costs a page this long at most, then its circuit breaker fails fast.
    REDIS_CONNECT_TIMEOUT = 0.25
    REDIS_SOCKET_TIMEOUT = 0.4
    #: The same for jobs, in worker processes: a job may block on Redis for a while (waiting on a
    #: list, writing a large value) and has no person waiting on a page.
    JOB_REDIS_CONNECT_TIMEOUT = 5
    JOB_REDIS_SOCKET_TIMEOUT = 30

    # Outgoing mail: SMTP_URL is parsed by parse_smtp_url; None in development drops mail with a warning.
    SMTP_URL: str | None = None
    MAIL_FROM = "Worklane <no-reply@worklane.localhost>"
    #: The site's address: every link in mail is built from it (app.core.mail.public_url), never
    #: from the request's Host, which the client chooses.
    PUBLIC_URL = "http://127.0.0.1:5000"
    #: Whether requests must name a served host (PUBLIC_URL's or one of ALLOWED_HOSTS); a
    #: foreign Host gets 400. The health checks answer any Host (load balancers probe by IP).
    ENFORCE_HOSTS = False
    #: Extra ``host`` or ``host:port`` names served besides PUBLIC_URL's (lower-case).
    ALLOWED_HOSTS: frozenset[str] = frozenset()
    #: Accounts (lower-case emails) that may open the operator console; nobody by default.
    OPERATOR_EMAILS: frozenset[str] = frozenset()
    #: Bearer token of /metrics; without one the endpoint answers 404.
    METRICS_TOKEN: str | None = None
    #: Where the development mail sink stores messages and /dev/mail reads them (default: <instance>/mail).
    DEV_MAIL_DIR: str | None = None
    #: Uploaded imports and exports (app/core/storage.py); shared by every web and worker machine.
    FILE_STORAGE_PATH: str | None = None

    # Flask-Caching: one Redis-backed cache; keys are owned by app/core/cache.py. Its backend
    # answers as an empty cache while the cache Redis is unreachable (pages come from the database).
    CACHE_TYPE = "app.core.cache_backend.ForgivingRedisCache"
    CACHE_DEFAULT_TIMEOUT = 300
    CACHE_KEY_PREFIX = "worklane:cache:"

    # Flask-Compress: brotli first, gzip for everyone else.
    COMPRESS_ALGORITHM = ["br", "gzip"]
    COMPRESS_MIN_SIZE = 500
    # Bodies from 16 KB (a board, a list, search) at brotli 1 / gzip 2: a third to a half of the
    # CPU of the default levels (4 / 6) for one to three points less saved; smaller pages (an
    # issue page) keep the default levels, which keep them above 70% saved. Cached pages are
    # gzipped once at these levels when stored (gzip 1 finds too few of a board's repeated CSRF
    # slots to splice its token in). See app/core/compression.py.
    COMPRESS_LARGE_SIZE = 16 * 1024
    COMPRESS_LARGE_BR_LEVEL = 1
    COMPRESS_LARGE_LEVEL = 2
    COMPRESS_MIMETYPES = [
        "text/html",
        "text/css",
        "text/plain",
        "text/csv",
        "application/json",
        "application/javascript",
        "image/svg+xml",
    ]

    # The largest body any page takes: the CSV import's 10 MB file, with room to tell people
    # it is over its own limit (a form error) rather than refuse it here (413).
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024

    # Static files carry a content hash in their URL, so they can be cached "forever".
    SEND_FILE_MAX_AGE_DEFAULT = 3600
    STATIC_IMMUTABLE_MAX_AGE = 31536000

    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session (a visitor's: its cookie)
    #: A visitor's CSRF secret (signed double submit, see app/core/sessions.py); never stored server-side.
    CSRF_COOKIE_NAME = "worklane_csrf"

    # Sessions (app/core/sessions.py): a login is stored in Redis and the cookie holds only its id;
    # a visitor's few values (a flash message) travel in the cookie itself, signed.
    SESSION_KEY_PREFIX = "worklane:session:"
    SESSION_REFRESH_EACH_REQUEST = True
    SESSION_COOKIE_NAME = "worklane_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: Idle timeout: a session unused this long is gone (its Redis key expires).
    SESSION_IDLE_MINUTES = 12 * 60
    #: Absolute timeout: after this long since login, log in again.
    SESSION_ABSOLUTE_HOURS = 14 * 24
    #: While Redis cannot be read, a page (GET) of a person whose session this process read this
    #: recently is served from that copy, read-only; others get a 503 page (app/core/sessions.py).
    SESSION_OUTAGE_GRACE_SECONDS = 120
    REMEMBER_COOKIE_DURATION = 0  # no "remember me" cookie: the server-side session is the login

    # Rate limits (Flask-Limiter) are counted in Redis, shared by every web process.
    # While that Redis is unreachable, each process counts in memory (app/core/ratelimits.py).
    RATELIMIT_ENABLED = True
    RATELIMIT_STRATEGY = "moving-window"
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    LOGIN_LIMIT_PER_IP = "20 per 10 minutes"
    #: Tight, per account from one address: a guesser is blocked, the owner elsewhere is not.
    LOGIN_LIMIT_PER_ACCOUNT_AND_IP = "8 per 10 minutes"
    #: Looser, per account from anywhere: guesses spread over many addresses.
    LOGIN_LIMIT_PER_ACCOUNT = "40 per hour"
    RESET_LIMIT_PER_IP = "10 per hour"
    RESET_LIMIT_PER_ACCOUNT = "3 per hour"
    SIGNUP_LIMIT_PER_IP = "10 per hour"
    #: Sign-ups naming one email address (for a taken address, each mails its owner).
    SIGNUP_LIMIT_PER_ACCOUNT = "3 per hour"
    #: Forms that check the signed-in person's current password (password and email change).
    CURRENT_PASSWORD_LIMIT = "5 per 15 minutes"
    #: Invitation mails (new and resent) one person makes go out, and resends of one invitation.
    INVITATION_LIMIT_PER_USER = "20 per hour"
    INVITATION_LIMIT_PER_ORGANIZATION = "50 per hour"
    INVITATION_RESEND_LIMIT = "3 per hour"

    #: How many proxies in front of the web process set X-Forwarded-For/-Proto (0: none).
    PROXY_COUNT = 0
    HSTS_SECONDS = 0

    EMAIL_VERIFY_MAX_AGE = 7 * 24 * 3600
    PASSWORD_RESET_MAX_AGE = 3600
    INVITATION_DAYS = 7

    #: Export files (manual and nightly) are deleted this many days after they were made.
    EXPORT_RETENTION_DAYS = 7
    #: A download link to an export works this long after the page that showed it.
    EXPORT_LINK_HOURS = 24

    LOG_LEVEL = "INFO"
    LOG_JSON = True

    # Background work: queue names, job kinds, timeouts and retries live in app/core/queue/queues.py.
    RQ_DEFAULT_JOB_TIMEOUT = 180
    SCHEDULER_TICK_SECONDS = 5
    #: A worker confirms its running job this often; the job counts as abandoned (its worker
    #: was killed) this long after the last confirmation; abandoned jobs are recovered by a
    #: maintenance pass run this often (workers/maintenance.py).
    JOB_HEARTBEAT_SECONDS = 5
    JOB_LOST_AFTER_SECONDS = 15
    JOB_MAINTENANCE_SECONDS = 5
    #: A job still running this long after its timeout (its own alarm could not stop it: a call
    #: that never returns to Python) has its work horse killed by the worker (workers/horse.py).
    JOB_KILL_GRACE_SECONDS = 60
    #: Outgoing mail (app/core/mail_delivery.py): the sweep sends a mail its delivery job has not claimed
    #: this long after it was written (Redis was away at commit, the job was lost)…
    OUTBOX_SWEEP_AFTER_SECONDS = 60
    #: …and retries a mail whose worker claimed it this long ago and died (above any SMTP timeout).
    OUTBOX_LEASE_SECONDS = 300

    @classmethod
    def from_env(cls, environ=None) -> BaseConfig:
        """Build an instance of this config from environment variables."""
        environ = os.environ if environ is None else environ
        config = cls()
        config.INSTANCE_PATH = environ.get("WORKLANE_INSTANCE_PATH") or cls.INSTANCE_PATH
        config.SECRET_KEY = environ.get("SECRET_KEY") or None
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
            ("DATABASE_URL", self.SQLALCHEMY_DATABASE_URI),
            ("REDIS_URL (or REDIS_QUEUE_URL)", self.REDIS_QUEUE_URL),
        ]


class DevelopmentConfig(BaseConfig):
    """A laptop: SQLite under instance/, a generated secret, readable logs allowed."""

    ENV_NAME = "development"
    DEBUG = False  # the debugger is opt-in with `flask run --debug`

    @classmethod
    def default_database_url(cls, config) -> str:
        return "sqlite:///" + str(Path(config.INSTANCE_PATH) / "worklane.db")

    def finish(self, environ) -> None:
        if not self.SECRET_KEY:
            self.SECRET_KEY = development_secret_key(Path(self.INSTANCE_PATH))
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

    def finish(self, environ) -> None:
        self.SECRET_KEY = environ.get("SECRET_KEY") or TestingConfig.SECRET_KEY
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
        return [*super().required_settings(), ("SMTP_URL", self.SMTP_URL), ("PUBLIC_URL", self.PUBLIC_URL)]

    def validate(self) -> None:
        super().validate()
        if len(self.SECRET_KEY) < self.MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"SECRET_KEY must be at least {self.MIN_SECRET_KEY_LENGTH} characters in production "
                '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            raise ConfigError("production needs a PostgreSQL DATABASE_URL, not SQLite")


CONFIGS = {config.ENV_NAME: config for config in (DevelopmentConfig, ProductionConfig, TestingConfig)}


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


def config_from_env(environ=None, dotenv_path: Path | None = PROJECT_ROOT / ".env") -> BaseConfig:
    """Build the config named by ``WORKLANE_ENV`` from the environment.

    In development the ``.env`` file in the project root is read too; values in
    the real environment win. Other environments ignore ``.env``.
    """
    environ = dict(os.environ if environ is None else environ)
    name = (environ.get("WORKLANE_ENV") or "development").strip().lower()
    if name not in CONFIGS:
        raise ConfigError(f"WORKLANE_ENV must be one of {', '.join(CONFIGS)}, got {name!r}")
    if name == "development" and dotenv_path is not None and dotenv_path.is_file():
        from dotenv import dotenv_values

        from_file = {key: value for key, value in dotenv_values(dotenv_path).items() if value is not None}
        environ = {**from_file, **environ}
    return CONFIGS[name].from_env(environ)
