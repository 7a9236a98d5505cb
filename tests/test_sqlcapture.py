"""The routability check itself: what it reports, what it lets through, and that it sees the app."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.conftest import DATABASE_KIND
from tests.factories import make_acme
from tests.sqlcapture import (
    ALLOWED,
    ALLOWED_BY_ID,
    CHILD_SITE,
    Capture,
    Sent,
    child,
    judge,
    normalized,
    unpinned_tables,
)

TENANT = {"issues", "projects", "issue_assignees", "comments", "memberships"}


def test_a_statement_without_the_equality_is_reported():
    """A tenant table read by id alone is not routable."""
    assert unpinned_tables("SELECT issues.id FROM issues WHERE issues.id = %(id_1)s", TENANT) == ["issues"]


def test_an_equality_on_tenant_id_passes():
    """tenant_id equal to a parameter or a literal (cast or not) pins the table."""
    assert unpinned_tables("SELECT issues.id FROM issues WHERE issues.tenant_id = %(t)s::UUID", TENANT) == []
    assert unpinned_tables("SELECT id FROM issues WHERE tenant_id = 'a' AND id = 'b'", TENANT) == []
    assert unpinned_tables("SELECT id FROM issues WHERE tenant_id IN (%(t)s)", TENANT) == []


def test_a_condition_that_does_not_hold_for_every_row_pins_nothing():
    """An equality under OR, or an IN list of several tenants, reaches several shards."""
    either = "SELECT id FROM issues WHERE tenant_id = %(a)s OR id = %(b)s"
    assert unpinned_tables(either, TENANT) == ["issues"]
    assert unpinned_tables("SELECT id FROM issues WHERE tenant_id IN (%(a)s, %(b)s)", TENANT) == ["issues"]
    assert unpinned_tables("SELECT id FROM issues WHERE tenant_id <> %(a)s", TENANT) == ["issues"]


def test_a_join_on_tenant_id_to_a_pinned_table_passes():
    """A table joined on tenant_id to a filtered one is pinned through the join, transitively."""
    sql = (
        "SELECT i.id FROM issues AS i "
        "JOIN projects AS p ON p.tenant_id = i.tenant_id AND p.id = i.project_id "
        "JOIN issue_assignees ON issue_assignees.tenant_id = p.tenant_id WHERE i.tenant_id = %(t)s"
    )
    assert unpinned_tables(sql, TENANT) == []


def test_a_join_without_tenant_id_is_reported():
    """A table joined on another key only is reported, the filtered one is not."""
    sql = "SELECT i.id FROM issues AS i JOIN projects AS p ON p.id = i.project_id WHERE i.tenant_id = %(t)s"
    assert unpinned_tables(sql, TENANT) == ["projects"]


def test_subqueries_are_judged_in_their_own_block_or_through_correlation():
    """A subquery pins its tables itself or by tenant_id equal to a pinned outer table."""
    correlated = (
        "SELECT issues.id, (SELECT count(*) FROM comments WHERE comments.tenant_id = issues.tenant_id "
        "AND comments.issue_id = issues.id) FROM issues WHERE issues.tenant_id = %(t)s"
    )
    assert unpinned_tables(correlated, TENANT) == []
    loose = (
        "SELECT issues.id FROM issues WHERE issues.tenant_id = %(t)s "
        "AND issues.id IN (SELECT issue_id FROM comments)"
    )
    assert unpinned_tables(loose, TENANT) == ["comments"]


def test_writes_need_tenant_id_too():
    """UPDATE and DELETE need the equality; INSERT needs a tenant_id column."""
    assert unpinned_tables("UPDATE issues SET title = %(t)s WHERE issues.id = %(id)s", TENANT) == ["issues"]
    assert unpinned_tables("DELETE FROM comments WHERE tenant_id = %(t)s AND id = %(id)s", TENANT) == []
    assert unpinned_tables("INSERT INTO comments (tenant_id, id) VALUES (%(t)s, %(id)s)", TENANT) == []
    assert unpinned_tables("INSERT INTO comments (id, body) VALUES (%(id)s, %(b)s)", TENANT) == ["comments"]


def test_global_tables_and_schema_changes_are_not_judged():
    """Reference tables and DDL are not routed by tenant."""
    assert unpinned_tables("SELECT users.id FROM users WHERE users.email = %(e)s", TENANT) == []
    assert unpinned_tables("ALTER TABLE issues ADD COLUMN x integer", TENANT) == []


def test_a_task_by_its_id_alone_is_allowed_and_nothing_else():
    """The one table still keyed by id alone is allowed by id, not when read by anything else."""
    capture = Capture({"tasks", "issues"}, re.compile(r"\b(?:tasks|issues)\b"))
    for sql in (
        "UPDATE tasks SET status=%(status)s WHERE tasks.id = %(tasks_id)s",
        "SELECT tasks.id FROM tasks WHERE tasks.kind = %(kind_1)s",
        "SELECT issues.id FROM issues WHERE issues.id = %(pk_1)s",
    ):
        capture.statements[sql, "app/x.py:1 in f", None] = Sent(sql, "app", "app/x.py:1 in f", None, 1)
    offenders, allowed, _ = judge(capture)
    assert [judged.sent.sql for judged in allowed] == [
        "UPDATE tasks SET status=%(status)s WHERE tasks.id = %(tasks_id)s"
    ]
    assert allowed[0].reason == ALLOWED_BY_ID["tasks"]
    assert sorted(judged.tables[0] for judged in offenders) == ["issues", "tasks"]


def test_expanded_in_lists_fold_into_one_statement():
    """The same query sent with 2 or 20 values is one distinct statement."""
    two = "SELECT id FROM issues WHERE id IN (%(id_1_1)s, %(id_1_2)s)"
    three = "SELECT id FROM issues WHERE id IN (%(id_1_1)s, %(id_1_2)s, %(id_1_3)s)"
    assert normalized(two) == normalized(three)


def _capture_memberships_of(app, user_id) -> Capture:
    from app.auth.identity import memberships_of

    capture = Capture({"memberships"}, re.compile(r"\bmemberships\b"))

    def record(conn, cursor, statement, parameters, context, executemany):
        capture.record(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        with app.test_request_context():
            memberships_of(user_id)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    return capture


@pytest.mark.skipif(DATABASE_KIND != "postgres", reason="the capture runs on PostgreSQL")
def test_the_capture_judges_the_apps_statements_and_names_their_code(app, db_session, monkeypatch):
    """A cross-tenant read of the app is allowed by its unscoped reason, reported without it."""
    owner_id = make_acme().owner.id
    reason = "a user's own memberships, for the organization switcher"

    offenders, allowed, counts = judge(_capture_memberships_of(app, owner_id))
    assert [(judged.sent.unscoped, judged.reason) for judged in allowed] == [(reason, ALLOWED[reason])]
    assert offenders == []
    assert counts["app"] == 1

    monkeypatch.delitem(ALLOWED, reason)
    offenders, allowed, counts = judge(_capture_memberships_of(app, owner_id))
    assert allowed == []
    assert [judged.tables for judged in offenders] == [["memberships"]]
    assert offenders[0].sent.location.startswith("app/auth/identity.py:")
    assert offenders[0].sent.location.endswith(" in memberships_of")


@pytest.mark.processes
@pytest.mark.skipif(DATABASE_KIND != "postgres", reason="the capture runs on PostgreSQL")
def test_a_started_process_records_what_it_sends(database_url, tmp_path):
    """A process the tests start writes each distinct statement it sends for the session to judge."""
    script = (
        "from sqlalchemy import create_engine, text\n"
        f"engine = create_engine({database_url!r})\n"
        "with engine.connect() as connection:\n"
        "    for _ in range(3):\n"
        "        connection.execute(text('SELECT 1 AS issues'))\n"
    )
    env = {
        **os.environ,
        child.CAPTURE_DIR: str(tmp_path),
        child.CAPTURE_TABLES: "issues",
        child.CAPTURE_PARENT: str(os.getpid()),
        "PYTHONPATH": str(CHILD_SITE),
    }
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    lines = [json.loads(line) for path in tmp_path.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert lines == [
        {"sql": "SELECT 1 AS issues", "origin": "library", "location": "(no project frame)", "unscoped": None}
    ]
