"""Every Flask extension, created unbound; ``create_app`` binds them.

Nothing here opens a connection: engines, Redis clients and caches connect on
first use, inside a request, a job or a CLI command.
"""

from __future__ import annotations

from flask import current_app
from flask_caching import Cache
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from redis import Redis
from sqlalchemy import MetaData

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
compress = Compress()
csrf = CSRFProtect()
login_manager = LoginManager()
# Limits are declared on the views that need them (login, reset); storage is Redis.
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


class RedisConnections:
    """One lazily created Redis client per app, for RQ and health checks.

    ``redis.Redis.from_url`` does not connect until the first command, and the
    client is created on first access, so binding it to an app is free of
    side effects.
    """

    extension_name = "worklane_redis"

    def init_app(self, app) -> None:
        app.extensions[self.extension_name] = {"client": None}

    def client(self, app=None) -> Redis:
        app = app or current_app._get_current_object()
        state = app.extensions[self.extension_name]
        if state["client"] is None:
            state["client"] = Redis.from_url(
                app.config["REDIS_URL"],
                socket_connect_timeout=2,
                socket_timeout=10,
                health_check_interval=30,
            )
        return state["client"]


redis_connections = RedisConnections()
