"""Readiness checks: can this process serve requests right now?"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import text

from app.config import PROJECT_ROOT
from app.core.database import without_connect_retries
from app.extensions import db, redis_connections

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def migration_heads(directory: str = str(PROJECT_ROOT / "migrations")) -> tuple[str, ...]:
    """The head revision(s) of the migration scripts shipped with this code."""
    return tuple(sorted(ScriptDirectory(directory).get_heads()))


def _timed(check):
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # any failure means "not ready", with the reason
        detail = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        ok = False
    detail = dict(detail or {})
    detail["ok"] = ok and detail.pop("ok", True)
    detail["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return detail


def check_database() -> dict:
    def _check():
        # A read: on SQLite it must not wait for (or take) the write lock. A database that is
        # away is reported at once, not after the connection retries pages get.
        with (
            without_connect_retries(),
            db.engine.execution_options(sqlite_read_only=True).connect() as connection,
        ):
            connection.execute(text("SELECT 1"))
            current = tuple(sorted(MigrationContext.configure(connection).get_current_heads()))
        head = migration_heads()
        return {
            "ok": current == head,
            "schema_revision": ",".join(current) or None,
            "code_revision": ",".join(head) or None,
        }

    return _timed(_check)


def check_redis(client) -> dict:
    """Whether a Redis server answers a PING: within the clients' short socket timeout, or at
    once with the reason while its circuit breaker is open (app/core/redis_breaker.py)."""

    def _check():
        client.ping()
        return {}

    return _timed(_check)


#: How long a process trusts what it last read of the queue Redis's persistence settings.
_SETTINGS_TTL_SECONDS = 60
_settings_seen: dict[str, tuple[float, str | None]] = {}


def queue_redis_problem(client) -> str | None:
    """What is wrong with the queue Redis's settings for production, or None.

    Queued jobs and sessions must survive a restart and never be evicted: ``maxmemory-policy
    noeviction`` and ``appendonly yes``. Read with INFO (which managed Redis services allow,
    unlike CONFIG), at most once a minute per process.
    """
    address = repr(client.connection_pool)
    seen = _settings_seen.get(address)
    if seen and time.monotonic() - seen[0] < _SETTINGS_TTL_SECONDS:
        return seen[1]
    info = {**client.info("persistence"), **client.info("memory")}
    wrong = []
    if info.get("maxmemory_policy", "noeviction") != "noeviction":
        wrong.append(f"maxmemory-policy is {info['maxmemory_policy']} (needs noeviction)")
    if str(info.get("aof_enabled", "0")) != "1":
        wrong.append("appendonly is no (needs yes: queued jobs would be lost on a restart)")
    problem = "the queue Redis " + " and ".join(wrong) if wrong else None
    if problem:
        log.warning(problem)
    _settings_seen[address] = (time.monotonic(), problem)
    return problem


def readiness() -> tuple[bool, dict]:
    queue = redis_connections.client()
    checks = {"database": check_database(), "redis": check_redis(queue)}
    if current_app.config["REDIS_CACHE_URL"] != current_app.config["REDIS_QUEUE_URL"]:
        checks["redis_cache"] = check_redis(redis_connections.cache_client())
    if current_app.config["ENV_NAME"] == "production" and checks["redis"]["ok"]:
        try:
            problem = queue_redis_problem(queue)
        except RedisError:
            problem = None  # answered the PING, not INFO: the next check will tell
        if problem:
            # Reported, not fatal: taking every web process out of the balancer would be worse.
            checks["redis"]["warning"] = problem
    ready = all(check["ok"] for check in checks.values())
    return ready, {
        "status": "ready" if ready else "unavailable",
        "environment": current_app.config["ENV_NAME"],
        "checks": checks,
    }
