"""Every Flask extension, created unbound; ``create_app`` binds them.

Nothing here opens a connection: engines, Redis clients and caches connect on
first use, inside a request, a job or a CLI command.
"""

from __future__ import annotations

from flask import current_app
from flask_caching import Cache
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from redis import Redis
from sqlalchemy import MetaData

from app.core.compression import SizedCompress
from app.core.replica import RoutingSession

# Constraint names are fixed by convention so migrations stay identical on
# PostgreSQL and SQLite and can drop/alter constraints by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The session routes page views to a streaming replica when one is configured (app/core/replica.py).
db = SQLAlchemy(
    metadata=MetaData(naming_convention=NAMING_CONVENTION), session_options={"class_": RoutingSession}
)
migrate = Migrate(compare_type=True, render_as_batch=True)
cache = Cache()
compress = SizedCompress()  # Flask-Compress, cheaper on large bodies
csrf = CSRFProtect()
login_manager = LoginManager()
# Limits are declared on the views that need them (login, reset); storage is Redis.
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


class RedisConnections:
    """The app's Redis clients, created lazily: one for queues and sessions, one for the cache.

    ``client()`` talks to the queue Redis (``REDIS_QUEUE_URL``: RQ, sessions, locks),
    ``cache_client()`` to the cache Redis (``REDIS_CACHE_URL``; Flask-Caching and Flask-Limiter
    make their own clients with the same options). Both have short timeouts, no retries and a
    circuit breaker per server (app/core/redis_breaker.py), so a Redis that hangs costs a
    request a fraction of a second, then nothing. The worker loop makes its own patient client.

    ``redis.Redis.from_url`` does not connect until the first command, and a client is created
    on first access, so binding to an app is free of side effects.
    """

    extension_name = "worklane_redis"

    def init_app(self, app) -> None:
        app.extensions[self.extension_name] = {"client": None, "cache": None}

    def for_jobs(self, app) -> None:
        """Give this app's clients the jobs' patient timeouts (``JOB_REDIS_*``) from now on: a
        worker process calls it before it runs any job; clients made before are dropped."""
        app.config["REDIS_CONNECT_TIMEOUT"] = app.config["JOB_REDIS_CONNECT_TIMEOUT"]
        app.config["REDIS_SOCKET_TIMEOUT"] = app.config["JOB_REDIS_SOCKET_TIMEOUT"]
        app.extensions[self.extension_name] = {"client": None, "cache": None}

    def client(self, app=None) -> Redis:
        """The queue Redis (queues, sessions, locks)."""
        return self._client(app, "client", "REDIS_QUEUE_URL")

    def cache_client(self, app=None) -> Redis:
        """The cache Redis (the cache, rate limits); the queue Redis's client when they are one."""
        app = app or current_app._get_current_object()
        if app.config["REDIS_CACHE_URL"] == app.config["REDIS_QUEUE_URL"]:
            return self.client(app)
        return self._client(app, "cache", "REDIS_CACHE_URL")

    def _client(self, app, slot: str, setting: str) -> Redis:
        app = app or current_app._get_current_object()
        state = app.extensions[self.extension_name]
        if state[slot] is None:
            from app.core.redis_breaker import client_options

            url = app.config[setting]
            connect, read = app.config["REDIS_CONNECT_TIMEOUT"], app.config["REDIS_SOCKET_TIMEOUT"]
            options = client_options(url, connect, read)
            state[slot] = Redis.from_url(url, **options)
        return state[slot]


redis_connections = RedisConnections()
