"""Readiness checks: can this process serve requests right now?"""

from __future__ import annotations

import time
from functools import lru_cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text

from app.config import PROJECT_ROOT
from app.core.database import without_connect_retries
from app.extensions import db, redis_connections


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


def check_redis() -> dict:
    def _check():
        redis_connections.client().ping()
        return {}

    return _timed(_check)


def readiness() -> tuple[bool, dict]:
    checks = {"database": check_database(), "redis": check_redis()}
    ready = all(check["ok"] for check in checks.values())
    return ready, {
        "status": "ready" if ready else "unavailable",
        "environment": current_app.config["ENV_NAME"],
        "checks": checks,
    }
