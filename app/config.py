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
``REDIS_URL``      required in production; ``make run`` starts a private Redis when unset
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "production", "testing")


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
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SQLALCHEMY_RECORD_QUERIES = False

    REDIS_URL: str | None = None

    # Flask-Caching: one Redis-backed cache; keys are owned by app/cache.py.
    CACHE_TYPE = "RedisCache"
    CACHE_DEFAULT_TIMEOUT = 300
    CACHE_KEY_PREFIX = "worklane:cache:"

    # Flask-Compress: brotli first, gzip for everyone else.
    COMPRESS_ALGORITHM = ["br", "gzip"]
    COMPRESS_MIN_SIZE = 500
    COMPRESS_MIMETYPES = [
        "text/html",
        "text/css",
        "text/plain",
        "text/csv",
        "application/json",
        "application/javascript",
        "image/svg+xml",
    ]

    # Static files carry a content hash in their URL, so they can be cached "forever".
    SEND_FILE_MAX_AGE_DEFAULT = 3600
    STATIC_IMMUTABLE_MAX_AGE = 31536000

    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"

    LOG_LEVEL = "INFO"
    LOG_JSON = True

    # Background work: queue names live in workers/queues.py.
    RQ_DEFAULT_JOB_TIMEOUT = 180
    SCHEDULER_TICK_SECONDS = 5

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
        config.REDIS_URL = environ.get("REDIS_URL") or None
        config.LOG_LEVEL = (environ.get("LOG_LEVEL") or cls.LOG_LEVEL).upper()
        config.LOG_JSON = _bool(environ.get("LOG_JSON"), cls.LOG_JSON)
        config.RQ_DEFAULT_JOB_TIMEOUT = _int(environ, "RQ_JOB_TIMEOUT", cls.RQ_DEFAULT_JOB_TIMEOUT)
        config.finish(environ)
        config.validate()
        return config

    @classmethod
    def default_database_url(cls, config) -> str | None:
        return None

    def finish(self, environ) -> None:
        """Fill in derived settings (hook for subclasses)."""
        self.CACHE_REDIS_URL = self.REDIS_URL

    def validate(self) -> None:
        """Raise ConfigError when this config cannot run."""
        missing = [
            name
            for name, value in (
                ("SECRET_KEY", self.SECRET_KEY),
                ("DATABASE_URL", self.SQLALCHEMY_DATABASE_URI),
                ("REDIS_URL", self.REDIS_URL),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"{self.ENV_NAME} configuration is missing required environment "
                f"variable(s): {', '.join(missing)}"
            )


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
        if not self.REDIS_URL:
            self.REDIS_URL = "redis://127.0.0.1:6379/0"
            self.CACHE_REDIS_URL = self.REDIS_URL
        super().validate()


class TestingConfig(BaseConfig):
    """The test suite: URLs come from the test command, never a developer's database."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-not-for-production-use-0123456789"
    WTF_CSRF_ENABLED = True
    LOG_LEVEL = "WARNING"
    SCHEDULER_TICK_SECONDS = 1

    def finish(self, environ) -> None:
        self.SECRET_KEY = environ.get("SECRET_KEY") or TestingConfig.SECRET_KEY
        super().finish(environ)


class ProductionConfig(BaseConfig):
    """Real traffic: every secret and URL must be given; cookies are HTTPS-only."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"
    MIN_SECRET_KEY_LENGTH = 32

    def validate(self) -> None:
        super().validate()
        if len(self.SECRET_KEY) < self.MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"SECRET_KEY must be at least {self.MIN_SECRET_KEY_LENGTH} characters in production "
                '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            raise ConfigError("production needs a PostgreSQL DATABASE_URL, not SQLite")


CONFIGS = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}


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
        raise ConfigError(f"WORKLANE_ENV must be one of {', '.join(ENVIRONMENTS)}, got {name!r}")
    if name == "development" and dotenv_path is not None and dotenv_path.is_file():
        from dotenv import dotenv_values

        from_file = {key: value for key, value in dotenv_values(dotenv_path).items() if value is not None}
        environ = {**from_file, **environ}
    return CONFIGS[name].from_env(environ)
