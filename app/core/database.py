"""Engine-level behaviour shared by the web, the workers and the tests."""

from __future__ import annotations

import re
import select
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.pool import Pool

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


#: The key in a pooled SQLite connection's ``info``: its transaction is a page view's reader.
_READING_REQUEST = "worklane_reading_request"
WRITE_STATEMENT = re.compile(
    r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b|\s*WITH\b.*\b(INSERT|UPDATE|DELETE|REPLACE)\b",
    re.IGNORECASE | re.DOTALL,
)


class ReadingRequestWrites(Exception):
    """A page view (GET) cannot go on as a reader (it was about to write in its deferred SQLite
    transaction, or the replica it reads from cannot serve it): run it again as a writer."""


@event.listens_for(Engine, "begin")
def _begin_sqlite(conn):
    """SQLite: writers' transactions take the write lock when they begin (``BEGIN IMMEDIATE``).

    A deferred transaction that reads and then writes fails at once (SQLITE_BUSY, which
    ``busy_timeout`` does not wait out) if another connection — a worker — holds the write
    lock or committed in between; one that starts as a writer waits its turn instead.
    Readers stay deferred: in WAL mode they never wait, so a page view is not held up by a
    long import writing batch after batch. A reader is a GET (or HEAD, OPTIONS) request, or
    work that asks for it with the ``sqlite_read_only`` execution option (an export's
    snapshot, the readiness check). A GET that does write (a report computation it starts,
    the audit record of a download) is caught before its first write and run again as a
    writer (``register_writer_restarts``).
    """
    if conn.dialect.name == "sqlite":
        explicit = conn.get_execution_options().get("sqlite_read_only", False)
        reader = not explicit and reading_request()
        conn.info[_READING_REQUEST] = reader
        conn.exec_driver_sql("BEGIN DEFERRED" if explicit or reader else "BEGIN IMMEDIATE")


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _transaction_ended(conn):
    if not conn.invalidated:  # a connection cut under its transaction is discarded, info and all
        conn.info.pop(_READING_REQUEST, None)


@event.listens_for(Engine, "before_cursor_execute")
def _no_write_in_a_reading_request(conn, cursor, statement, parameters, context, executemany):
    if conn.info.get(_READING_REQUEST) and WRITE_STATEMENT.match(statement) and restartable_view():
        raise ReadingRequestWrites(statement.split(None, 3)[:3])


def reading_request() -> bool:
    """A page view (GET, HEAD, OPTIONS) that has not been made a writer by a restart."""
    from flask import g, has_request_context, request

    return (
        has_request_context()
        and request.method in ("GET", "HEAD", "OPTIONS")
        and not g.get("run_as_writer", False)
    )


def write_from_the_start() -> None:
    """Make this GET a writer now, before its view reads anything: for a view that, before its
    first write, does what cannot be done twice (a provider's single-use code exchanged), which
    ``register_writer_restarts`` would otherwise run again on SQLite. A reader's transaction
    already begun (by the request's own checks) is ended first, so the next begins as a writer."""
    from flask import g

    if not g.get("run_as_writer", False):
        g.run_as_writer = True
        _db().session.rollback()


def restartable_view() -> bool:
    """A GET view being dispatched, which ``register_writer_restarts`` can run again."""
    from flask import g, has_request_context

    return reading_request() and has_request_context() and g.get("restartable_view", False)


def _db():
    """The app's Flask-SQLAlchemy extension (``app.extensions.db``, whose session class routes
    reads to a replica and so imports this module)."""
    from flask import current_app

    return current_app.extensions["sqlalchemy"]


def _copied(value):
    """A session value as it was: lists and dicts copied, so changes made in place show."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def register_writer_restarts(app) -> None:
    """A GET view that writes on SQLite is rolled back at its first write and run again as a writer.

    The second run begins ``BEGIN IMMEDIATE``, so it waits for the write lock (up to the busy
    timeout) instead of failing with "database is locked" while a worker writes. The first
    run wrote nothing (its transaction is rolled back before the first write reached the
    database); what it did besides the database before that write is done again, so such
    views write first (a task row before its job is queued, an audit record before the file
    is sent); what it changed in the session (the messages it flashed, a sign-in's state it
    took out) is taken back. On PostgreSQL, only a page view that reads
    from a replica is ever run again, on the primary (``app.core.replica``).
    """
    dispatch = app.dispatch_request

    # Only SQLite and a replica's page views are ever run again: elsewhere no copy of the session.
    restarts = (app.config.get("SQLALCHEMY_DATABASE_URI") or "").startswith("sqlite") or bool(
        app.config.get("DATABASE_REPLICA_URL")
    )

    def dispatch_request():
        from flask import g, session

        g.restartable_view = True
        if not restarts:
            return dispatch()
        # The second run starts from the session as the first found it: what the first changed
        # (a flashed message, a sign-in's state taken out of it) is taken back, as its writes are.
        current = session._get_current_object()
        before = {key: _copied(value) for key, value in dict.items(current)}  # not marked accessed
        flags = (current.modified, current.accessed)
        try:
            return dispatch()
        except ReadingRequestWrites:
            _db().session.rollback()
            if dict(dict.items(current)) != before:
                dict.clear(current)
                dict.update(current, before)
                current.modified, current.accessed = flags
            g.run_as_writer = True
            return dispatch()

    app.dispatch_request = dispatch_request


# --- one commit per request ---------------------------------------------------------------


def register_commit_per_request(app) -> None:
    """A request commits once, here, when its view has answered; views and services only flush.

    The view's return value is made a response first. A response under 400 (a page, a
    redirect, a 304) commits the session; an error status or an exception rolls it back. The
    commit runs inside the dispatch, before the response is finalized and sent: a commit that
    fails is the view's own error, answered by its handler (``StaleDataError``, a versioned row
    changed meanwhile: 409 in ``app.core.errors``), and what runs at commit (mail written to the
    outbox, cache versions moved) has run before anyone sees the answer. A streamed body is
    produced after the commit. On SQLite, a GET whose commit would write is run again as a
    writer like one whose view writes (``register_writer_restarts``, registered after
    this so that it wraps the commit too).

    A view that must make rows visible before it answers (a job it is about to queue reads
    them) calls ``commit_now`` and says why. Jobs, commands and the demo data are not requests:
    they commit their own progress.
    """
    dispatch = app.dispatch_request

    def dispatch_request():
        db = _db()
        try:
            response = app.make_response(dispatch())
            if not db.session.registry.has():
                return response  # the view never used the database: nothing to commit or roll back
            if response.status_code < 400:
                db.session.commit()
                return response
        except BaseException:
            db.session.rollback()
            raise
        db.session.rollback()
        return response

    app.dispatch_request = dispatch_request


def commit_now(reason: str) -> None:
    """Commit before the request ends, because something outside this transaction must see its
    rows now: ``reason`` says what (it documents the call; nothing reads it)."""
    _db().session.commit()


# --- the database gone or restarting ------------------------------------------------------

#: SQLSTATEs of a server that is not there for the moment: the connection exception class (08…),
#: and a server shutting down, crashed, or still starting (57P01, 57P02, 57P03).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now, rather than that a statement is wrong.

    True for a connection that broke under a statement (SQLAlchemy then invalidates every pooled
    connection, so the next checkout connects afresh), for a connection that cannot be made
    (refused, timed out: psycopg gives no SQLSTATE), and for a server that is shutting down or
    still starting. Such an error is answered 503 and retried later; anything else is a fault.
    """
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or _server_unavailable(exc.orig)


def _server_unavailable(error: BaseException) -> bool:
    import psycopg

    if not isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    return error.sqlstate is None or error.sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


@event.listens_for(Pool, "checkout")
def _check_a_pooled_connection(dbapi_connection, connection_record, connection_proxy):
    """PostgreSQL: a pooled connection is checked before a request or job uses it, without a round
    trip while it can be: an idle connection the server has said nothing on since its last use is
    taken as it is; one on which the server has spoken or hung up (a restart's "terminating
    connection" notice, a closed socket), or that the driver no longer counts as idle, is
    pinged. A failed ping makes SQLAlchemy discard every connection made before it and use a new
    one, so after a restart one checkout finds them all gone, not one request per connection.

    This replaces SQLAlchemy's ``pool_pre_ping``, which pings on every checkout: one round trip
    of the five a short request made. A server gone without a word (a host cut off the network)
    is noticed by the statement, as with a ping that would have waited too; such a request
    answers 503.
    """
    if isinstance(dbapi_connection, sqlite3.Connection) or not _server_may_have_left(dbapi_connection):
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(";")  # an empty query: what SQLAlchemy's ping sends on psycopg
        finally:
            cursor.close()
    except Exception as exc:
        if not (_server_unavailable(exc) or dbapi_connection.closed or dbapi_connection.broken):
            raise
        raise InvalidatePoolError(f"pooled connection found dead on checkout: {exc}") from exc


def _server_may_have_left(connection) -> bool:
    """Whether a psycopg connection, idle in the pool, needs a ping to tell that it still works."""
    import psycopg

    if connection.closed or connection.broken:
        return True
    if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return True
    try:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))  # anything readable, an error or a hang-up
    except (OSError, ValueError, psycopg.Error):
        return True


_CONNECT_RETRY_INTERVAL = 0.1
_connect_retries_off: ContextVar[bool] = ContextVar("connect_retries_off", default=False)


@contextmanager
def without_connect_retries() -> Iterator[None]:
    """Connections made inside fail at once while the server is away (a readiness probe wants
    the answer now, not after ``DATABASE_CONNECT_RETRY_SECONDS``)."""
    token = _connect_retries_off.set(True)
    try:
        yield
    finally:
        _connect_retries_off.reset(token)


def _connect_retry_seconds() -> float:
    from flask import current_app, has_app_context

    if _connect_retries_off.get() or not has_app_context():
        return 0
    return current_app.config.get("DATABASE_CONNECT_RETRY_SECONDS", 0)


@event.listens_for(Engine, "do_connect")
def _connect_through_a_restart(dialect, connection_record, cargs, cparams):
    """PostgreSQL: a new connection refused because the server is restarting is tried again for
    up to ``DATABASE_CONNECT_RETRY_SECONDS``, so a request that arrives while the server
    restarts (a fast restart takes about a second) waits for it instead of failing. Only the
    requests whose statements were running at that instant fail (503)."""
    if dialect.name != "postgresql":
        return None
    deadline = time.monotonic() + _connect_retry_seconds()
    while True:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            if not _server_unavailable(exc) or time.monotonic() + _CONNECT_RETRY_INTERVAL > deadline:
                raise
        time.sleep(_CONNECT_RETRY_INTERVAL)


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
    """SQL, run by the table owner, that lets the app's login role use the schema (tables and functions).

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
        # The search's matches (migration 0012), which PUBLIC may not call.
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role}",
    ]
