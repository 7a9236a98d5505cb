"""Engine-level behaviour shared by the web, the workers and the tests."""

from __future__ import annotations

import re
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    # WAL lets the web process read while a worker writes (make run has both).
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 5000",
)


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, connection_record):
    """Turn on foreign keys and WAL, and let SQLAlchemy own transactions.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; the
    SQLAlchemy docs' recipe is to switch it off and emit BEGIN ourselves
    (see ``_begin_sqlite``).
    """
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


@event.listens_for(Engine, "begin")
def _begin_sqlite(conn):
    """SQLite: writers' transactions take the write lock when they begin (``BEGIN IMMEDIATE``).

    A deferred transaction that reads and then writes fails at once (SQLITE_BUSY, which
    ``busy_timeout`` does not wait out) if another connection — a worker — committed in
    between; one that starts as a writer waits its turn instead. Readers stay deferred: in
    WAL mode they never wait, so a page view is not held up by a long import writing batch
    after batch. A reader is a GET (or HEAD, OPTIONS) request, or work that asks for it with
    the ``sqlite_read_only`` execution option (an export's snapshot, the readiness check).
    """
    if conn.dialect.name == "sqlite":
        read_only = conn.get_execution_options().get("sqlite_read_only", False) or _reading_request()
        conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def _reading_request() -> bool:
    from flask import has_request_context, request

    return has_request_context() and request.method in ("GET", "HEAD", "OPTIONS")


# --- PostgreSQL row-level security for tenant tables (used by migrations) ---------------

TENANT_POLICY = "tenant_isolation"
_TENANT_PREDICATE = (
    "current_setting('app.unscoped', true) = 'on' "
    "OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
)


def enable_tenant_rls(op, table: str) -> None:
    """Turn on and force RLS for a tenant table, closed when no tenant is set."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {TENANT_POLICY} ON {table} "
        f"USING ({_TENANT_PREDICATE}) WITH CHECK ({_TENANT_PREDICATE})"
    )


def disable_tenant_rls(op, table: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP POLICY IF EXISTS {TENANT_POLICY} ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def app_role_grants(role: str) -> list[str]:
    """SQL, run by the table owner, that lets the app's login role use the schema.

    The app role owns nothing and is created NOSUPERUSER NOBYPASSRLS, so row-level
    security applies to it; ``flask db grant-app-role ROLE`` runs these statements.
    """
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError(f"not a plain role name: {role!r}")
    privileges = "SELECT, INSERT, UPDATE, DELETE"
    return [
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT {privileges} ON ALL TABLES IN SCHEMA public TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {privileges} ON TABLES TO {role}",
    ]
