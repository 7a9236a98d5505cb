"""The SQL statements the app's engine sends while a block runs."""

from __future__ import annotations

from sqlalchemy import event

from app.extensions import db

#: The test's own transaction (standing in for the request's) sends these around the app's work.
_TEST_TRANSACTION = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


class Statements:
    """Every statement the app's engine sends in the block (``sent``), but the test's savepoints."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.sent: list[str] = []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, *args):
        if not statement.startswith(_TEST_TRANSACTION):
            self.sent.append(statement)
