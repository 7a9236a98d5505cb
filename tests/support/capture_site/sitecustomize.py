"""The SQL capture in the processes the tests start (workers, their work horses, web processes).

``tests/sqlcapture.py`` puts this directory on ``PYTHONPATH`` and names a directory in
``WORKLANE_SQL_CAPTURE_DIR``; Python imports this module as every child process starts. It records
each distinct statement that names a tenant table, with the code that sent it and the ``unscoped``
reason, as one JSON line in ``<dir>/<pid>.jsonl``, written at once (a forked work horse ends with
``os._exit``, which runs no exit handler). The test process merges the files at the end.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading

CAPTURE_DIR = "WORKLANE_SQL_CAPTURE_DIR"
CAPTURE_TABLES = "WORKLANE_SQL_CAPTURE_TABLES"
CAPTURE_PARENT = "WORKLANE_SQL_CAPTURE_PARENT"

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_APP_DIRS = tuple(os.path.join(PROJECT_ROOT, name) + os.sep for name in ("app", "workers"))
_MIGRATIONS_DIR = os.path.join(PROJECT_ROOT, "migrations") + os.sep
_TESTS_DIR = os.path.join(PROJECT_ROOT, "tests") + os.sep


def sender(depth: int) -> tuple[str, str]:
    """(origin, location) of the first project frame above ``depth``: app (or workers), migrations,
    tests, or library when no project code is on the stack."""
    frame = sys._getframe(depth + 1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith((*_APP_DIRS, _MIGRATIONS_DIR, _TESTS_DIR)):
            if filename.startswith(_TESTS_DIR):
                origin = "tests"
            elif filename.startswith(_MIGRATIONS_DIR):
                origin = "migrations"
            else:
                origin = "app"
            path = os.path.relpath(filename, PROJECT_ROOT)
            return origin, f"{path}:{frame.f_lineno} in {frame.f_code.co_qualname}"
        frame = frame.f_back
    return "library", "(no project frame)"


def unscoped_reason() -> str | None:
    tenancy = sys.modules.get("app.core.tenancy")
    return tenancy.unscoped_reason() if tenancy is not None else None


class _ChildRecorder:
    def __init__(self, directory: str, tables: str):
        self.directory = directory
        self.pattern = re.compile(rf"\b(?:{tables})\b")
        self.seen: set[tuple] = set()
        self.pid = None
        self.lock = threading.Lock()

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if conn.dialect.name != "postgresql" or not self.pattern.search(statement):
            return
        origin, location = sender(1)
        reason = unscoped_reason()
        key = (statement, location, reason)
        with self.lock:
            if self.pid != os.getpid():  # a forked child starts its own file
                self.pid, self.seen = os.getpid(), set()
            if key in self.seen:
                return
            self.seen.add(key)
            line = json.dumps({"sql": statement, "origin": origin, "location": location, "unscoped": reason})
            with open(os.path.join(self.directory, f"{self.pid}.jsonl"), "a", encoding="utf-8") as out:
                out.write(line + "\n")


def _install() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(
        Engine, "before_cursor_execute", _ChildRecorder(os.environ[CAPTURE_DIR], os.environ[CAPTURE_TABLES])
    )


if os.environ.get(CAPTURE_DIR) and os.environ.get(CAPTURE_PARENT) != str(os.getpid()):
    _install()
