"""Configuration, read from environment variables.

A config is an object built *before* the app exists and handed to
``create_app(config)``: tests build their own without touching the
environment, and the entry points (``wsgi.py``, the ``flask`` CLI) build one
from the environment with :func:`config_from_env`.

Environment variables (see the README for the whole table):

``WORKLANE_ENV``   ``development`` (default), ``production`` or ``testing``
``SECRET_KEY``     required in production; development keeps its own under ``instance/``
``ENCRYPTION_KEYS``  Fernet keys, newest first, for secrets stored encrypted; required in production
                   (development and tests derive one from SECRET_KEY)
``AUDIT_SIGNING_KEY``  signs the audit log's checkpoints; required in production (never in the
                   database); development and tests derive one from SECRET_KEY
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
``DEFAULT_PLAN``   the plan new organizations start on: free (default), team or business
``SSO_ALLOW_PRIVATE_ISSUERS``  allow organizations' OpenID Providers on private or loopback addresses
                   (default: development and tests only)
``OUTBOUND_ALLOWED_NETWORKS``  comma-separated CIDRs webhooks may reach though not public
                   (default: none; development: loopback)
``DNS_NAMESERVERS``  comma-separated DNS servers (``host`` or ``host:port``) for domain checks
                   (default: the system's)
``METRICS_TOKEN``  bearer token for ``/metrics`` (unset: ``/metrics`` answers 404)
``DATABASE_CONNECT_TIMEOUT``  PostgreSQL: seconds to wait for a new connection (default 5)
``DATABASE_CONNECT_RETRY_SECONDS``  PostgreSQL: how long a refused connection is tried again (default 3)
"""

from __future__ import annotations

import os
from pathlib import Path

from app.config.base import BaseConfig, ConfigError, normalize_database_url
from app.config.environments import DevelopmentConfig, ProductionConfig, TestingConfig, development_secret_key
from app.config.settings import PROJECT_ROOT

__all__ = [
    "CONFIGS",
    "PROJECT_ROOT",
    "BaseConfig",
    "ConfigError",
    "DevelopmentConfig",
    "ProductionConfig",
    "TestingConfig",
    "config_from_env",
    "development_secret_key",
    "normalize_database_url",
]

CONFIGS = {config.ENV_NAME: config for config in (DevelopmentConfig, ProductionConfig, TestingConfig)}


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
