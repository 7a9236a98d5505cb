"""Engine-level behaviour shared by the web, the workers and the tests."""

from __future__ import annotations

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
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")
