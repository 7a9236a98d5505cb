"""Page views read from a streaming replica, and still see what their reader just wrote.

With ``DATABASE_REPLICA_URL`` set, a GET (or HEAD, OPTIONS) request reads from the replica,
unless the person wrote something the replica has not replayed yet. After a request that
wrote, the primary's WAL insert position is kept in the person's session; a later page view
asks the replica how far it has replayed (one short query, in the transaction the page then
reads in) and stays on the primary until the replica is past that position. Everything else
reads and writes on the primary: other methods, jobs, commands.

A page view that turns out to write (a GET that records something) is stopped before its
first write and run again on the primary, as on SQLite (``app.core.database``). A replica that
cannot be reached, or that fails a statement (a recovery conflict, a write it refuses), sends
the page to the primary, and a replica that cannot be reached is left alone for
``REPLICA_RETRY_SECONDS`` in this process, so a dead replica costs one failed connection
attempt per process and period, not one per page.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, g, has_request_context, request, session
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from app.core.database import (
    WRITE_STATEMENT,
    ReadingRequestWrites,
    reading_request,
    restartable_view,
    without_connect_retries,
)

log = logging.getLogger(__name__)

#: The bind key of the replica's engine (``SQLALCHEMY_BINDS``).
REPLICA = "replica"
#: The session key holding the primary's WAL position after this person's last write.
WAL_KEY = "_wal"

#: Views that read nothing from the database (or read the primary on purpose, like the readiness
#: check): no replay-position check for them. ``None`` is a URL that matched no view (a 404).
NO_DATABASE_VIEWS = frozenset({None, "static", "health.healthz", "health.readyz"})

_down = {"until": 0.0}
_down_lock = threading.Lock()


class ReplicaCannotServe(ReadingRequestWrites):
    """The replica failed this page view: run it again on the primary."""


def replica_bind(url: str, connect_args: dict | None = None) -> dict:
    """The ``SQLALCHEMY_BINDS`` entry for a replica at ``url``, connecting like the primary
    (``connect_args``: keepalives, prepared statements behind a pooler) but impatiently."""
    return {
        "url": url,
        # A replica that does not answer is given up quickly: the primary serves instead.
        "connect_args": {**(connect_args or {}), "connect_timeout": 2},
    }


class RoutingSession(FlaskSession):
    """The app's session: a page view chosen to read from the replica gets the replica's engine."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and reads_from_replica():
            return self._db.engines[REPLICA]
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


def reads_from_replica() -> bool:
    """Whether this request's reads go to the replica (decided at its start, undone by a restart)."""
    return has_request_context() and g.get("read_replica", False) and reading_request()


def wal_position(lsn: str) -> int:
    """A PostgreSQL LSN (``16/B374D848``) as a number that orders like the position."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _replica_down() -> bool:
    return time.monotonic() < _down["until"]


def _mark_down(app: Flask, reason: str) -> None:
    with _down_lock:
        if not _replica_down():
            log.warning("replica unreachable, reading from the primary for a while: %s", reason)
        _down["until"] = time.monotonic() + app.config["REPLICA_RETRY_SECONDS"]


def register_replica_reads(app: Flask) -> None:
    """Route page views to the replica when ``DATABASE_REPLICA_URL`` is set (otherwise nothing)."""
    if REPLICA not in (app.config.get("SQLALCHEMY_BINDS") or {}):
        return
    db = app.extensions["sqlalchemy"]

    def choose_replica(endpoint, values):
        # An app URL value preprocessor runs before the blueprints' (the organization lookup)
        # and before every before_request function: all of the request's reads come after it.
        if request.method not in ("GET", "HEAD", "OPTIONS") or endpoint in NO_DATABASE_VIEWS:
            return
        if _replica_down():
            return
        g.read_replica = True
        try:
            # A replica that refuses connections is given up at once, not waited for like a
            # restarting primary: the primary serves instead.
            with without_connect_retries():
                replayed = db.session.execute(text("SELECT pg_last_wal_replay_lsn()")).scalar()
        except DBAPIError as exc:
            db.session.rollback()
            g.read_replica = False
            _mark_down(app, str(exc.orig).strip().splitlines()[0] if exc.orig else repr(exc))
            return
        written = session.get(WAL_KEY)
        if replayed is None or (written and wal_position(str(replayed)) < wal_position(written)):
            # Not a standby at all, or behind this person's last write: the primary serves.
            db.session.rollback()
            g.read_replica = False

    app.url_value_preprocessors.setdefault(None, []).insert(0, choose_replica)
    # Listeners on this app's two engines only: an app without a replica pays nothing per statement.
    with app.app_context():
        primary, replica = db.engines[None], db.engines[REPLICA]
    event.listen(primary, "before_cursor_execute", _note_primary_writes)
    event.listen(replica, "before_cursor_execute", _refuse_replica_writes)
    event.listen(replica, "handle_error", _replica_failed)

    @app.after_request
    def remember_write_position(response):
        if g.get("wrote_to_primary") and response.status_code < 400:
            with db.engine.connect() as connection:
                # The insert position is past this request's commit record even when the
                # commit returned before its WAL was flushed (synchronous_commit = off).
                position = connection.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar()
            session[WAL_KEY] = str(position)
        return response


def _note_primary_writes(conn, cursor, statement, parameters, context, executemany):
    """A write on the primary during a request is remembered (its WAL position is kept after it)."""
    if has_request_context() and WRITE_STATEMENT.match(statement):
        g.wrote_to_primary = True


def _refuse_replica_writes(conn, cursor, statement, parameters, context, executemany):
    """A write about to go to the replica runs the page view again, on the primary."""
    if has_request_context() and WRITE_STATEMENT.match(statement) and restartable_view():
        raise ReplicaCannotServe(statement.split(None, 3)[:3])


def _replica_failed(context):
    """A replica that fails a statement of a page view sends the view to the primary."""
    if not (has_request_context() and restartable_view()):
        return None
    if context.is_disconnect or context.connection is None:
        from flask import current_app

        _mark_down(current_app, str(context.original_exception).strip().splitlines()[0])
    raise ReplicaCannotServe(str(context.original_exception).strip().splitlines()[0])
