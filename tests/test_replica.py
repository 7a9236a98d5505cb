"""Reads from a streaming replica (made with pg_basebackup, replaying 2 s behind): page views read
from it, a person always sees what they just wrote, and a dead replica sends pages to the primary."""

from __future__ import annotations

import itertools

import pytest
from flask import request
from flask_migrate import upgrade
from sqlalchemy import event, select

from app.config import PROJECT_ROOT
from app.core.replica import wal_position
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Issue, Task
from tests.conftest import APP_ROLE, LiveServer
from tests.factories import OWNER, make_acme
from tests.support.forms import post_forms
from tests.support.http import HttpBrowser
from tests.support.pgcluster import PostgresCluster, with_worklane_database, worklane_env
from tests.support.replica import replica_of
from tests.support.workers import wait_for

pytestmark = [pytest.mark.processes, pytest.mark.postgres_only]

DATABASE = "worklane"
ISSUE = "/acme/issues/WEB-1"
SYSTEM_TASKS = "test: a system task written by a page view"
#: How far behind the primary the replica replays (recovery_min_apply_delay).
APPLY_DELAY = "2s"


@pytest.fixture(scope="module")
def primary():
    """A private primary with Worklane's roles, migrated, with Acme and one issue."""
    with PostgresCluster.create() as primary:
        yield with_worklane_database(primary, DATABASE)


@pytest.fixture(scope="module")
def replica(primary):
    """A streaming replica of the primary, from pg_basebackup, applying changes 2 s late."""
    with replica_of(primary, recovery_min_apply_delay=APPLY_DELAY) as replica:
        yield replica


@pytest.fixture
def served(app, primary, replica, make_app, test_env):
    """The app writing to the primary and reading page views from the replica, served by waitress."""
    served_app = make_app(
        worklane_env(
            test_env,
            primary,
            DATABASE,
            DATABASE_REPLICA_URL=replica.url(DATABASE, APP_ROLE),
            REPLICA_RETRY_SECONDS="1",
        )
    )
    with served_app.app_context():
        upgrade(directory=str(PROJECT_ROOT / "migrations"))
        if primary.psql("SELECT count(*) FROM organizations", DATABASE).strip() == "0":
            make_acme().add_issue("Replicas lag")
            db.session.commit()
        db.session.remove()
    served_app.view_runs = []

    def writes_on_get():
        served_app.view_runs.append(request.method)
        with unscoped(SYSTEM_TASKS):
            db.session.execute(select(Task.id)).all()
            db.session.add(Task(kind="k", description="written by a page view"))
            db.session.flush()
        return "written"

    served_app.add_url_rule("/writes-on-get", "writes_on_get", writes_on_get)
    if not replica.running:
        replica.start()
    caught_up(primary, replica)
    with LiveServer(served_app) as server:
        server.app = served_app
        yield server


def caught_up(primary, replica) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    written = primary.psql("SELECT pg_current_wal_insert_lsn()").strip()

    def replayed():
        position = replica.psql("SELECT pg_last_wal_replay_lsn()").strip()
        return position and wal_position(position) >= wal_position(written)

    wait_for(replayed, 60, "the replica replays the primary's changes")


def signed_in(server) -> HttpBrowser:
    browser = HttpBrowser(server.url)
    browser.log_in(OWNER)
    return browser


def rename(server, title: str) -> None:
    """Rename WEB-1 as an edit in the app does: on the primary, moving the versions of the pages
    that show it (a bare UPDATE through psql would leave their cached copies as they were)."""
    with server.app.app_context(), unscoped("test: rename the issue"):
        db.session.scalars(select(Issue).where(Issue.number == 1)).one().title = title
        db.session.commit()
        db.session.remove()


def add_comment(browser: HttpBrowser, text: str) -> None:
    page = browser.open(ISSUE)
    (form,) = [form for form in post_forms(page.body, ISSUE) if form.action.endswith("/comments")]
    data = dict(form.submission())
    data["body"] = text
    assert browser.open(form.target()[1], data).status == 303


def test_page_views_read_from_the_replica(primary, replica, served):
    """A change made on the primary reaches a reader's page only once the replica has replayed it."""
    reader = signed_in(served)
    caught_up(primary, replica)  # the sign-in's own writes are replayed
    rename(served, "Renamed on the primary")
    assert "Replicas lag" in reader.open(ISSUE).body  # the replica has not replayed it yet
    wait_for(lambda: "Renamed on the primary" in reader.open(ISSUE).body, 60, "the replica catches up")
    rename(served, "Replicas lag")


def test_a_person_sees_what_they_just_wrote(primary, replica, served):
    """Each comment a person posts is on the page they are sent back to, though the replica lags;
    another reader sees it at the latest once the replica has replayed it (a page read from the
    lagging replica is not kept in the cache, where it would hide the comment until the next change)."""
    writer, other = signed_in(served), signed_in(served)
    caught_up(primary, replica)
    for number in range(10):
        add_comment(writer, f"Comment number {number} from the writer")
        assert f"Comment number {number} from the writer" in writer.open(ISSUE).body
    last = "Comment number 9 from the writer"
    wait_for(lambda: last in other.open(ISSUE).body, 60, "the replica catches up")


def test_a_page_read_on_the_lagging_replica_is_not_kept_in_the_cache(primary, replica, served):
    """A reader whose page is read from the lagging replica right after an edit does not leave it
    in the cache: the writer, next, sees their comment, and the reader does once it is replayed."""
    writer, other = signed_in(served), signed_in(served)
    caught_up(primary, replica)
    add_comment(writer, "Written while the replica lags")
    other.open(ISSUE)  # read from the replica, which replays two seconds late
    assert "Written while the replica lags" in writer.open(ISSUE).body
    wait_for(lambda: "Written while the replica lags" in other.open(ISSUE).body, 60, "the replica catches up")


def test_a_dead_replica_sends_page_views_to_the_primary(primary, replica, served):
    """With the replica stopped, pages answer from the primary; started again, it serves again."""
    reader = signed_in(served)
    replica.stop()
    try:
        for _ in range(3):
            page = reader.open(ISSUE)
            assert page.status == 200, page.body
            assert "Replicas lag" in page.body
        rename(served, "Read from the primary")
        assert "Read from the primary" in reader.open(ISSUE).body
    finally:
        replica.start()
    renames = itertools.count()

    def reads_the_replica_again():
        # A rename on the primary that the page does not show yet was read from the lagging replica.
        title = f"Renamed {next(renames)}"
        rename(served, title)
        return title not in reader.open(ISSUE).body

    wait_for(reads_the_replica_again, 60, "pages read from the replica once it is back")
    rename(served, "Replicas lag")
    caught_up(primary, replica)


def test_a_page_view_that_writes_runs_again_on_the_primary(primary, served):
    """A GET that reads from the replica and then writes is stopped before its write and run
    again on the primary, where it writes once."""
    response = HttpBrowser(served.url).open("/writes-on-get")
    assert (response.status, response.body) == (200, "written")
    assert served.app.view_runs == ["GET", "GET"]
    count = "SELECT count(*) FROM tasks WHERE description = 'written by a page view'"
    assert primary.psql(count, DATABASE).strip() == "1"


def test_views_that_read_nothing_leave_the_replica_alone(served):
    """/healthz, /readyz, static files and unknown URLs send nothing to the replica; a page does."""
    statements = []
    with served.app.app_context():
        replica_engine = db.engines["replica"]

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(replica_engine, "before_cursor_execute", count)
    try:
        visitor = HttpBrowser(served.url)
        for path in ("/healthz", "/readyz", "/static/app.css", "/no-such-page"):
            visitor.open(path)
        assert statements == []
        assert visitor.open("/login").status == 200
        assert any("pg_last_wal_replay_lsn" in statement for statement in statements)
    finally:
        event.remove(replica_engine, "before_cursor_execute", count)
