"""PostgreSQL restarts, outages and cut connections, against a private cluster: the pages come back
at once after a restart, a request whose database is gone gets a clear 503 page (never a 500 or
the server's bare page), and the error pages render without the database."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest
from flask import request
from flask_migrate import upgrade
from rq.job import Job, JobStatus
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.config import PROJECT_ROOT
from app.extensions import db
from app.tasks.services import start_system_check
from tests.accounts import PASSWORD
from tests.conftest import APP_ROLE, LiveServer, csrf_token_from
from tests.factories import OWNER, make_acme
from tests.support.http import HttpBrowser
from tests.support.pgcluster import PostgresCluster, with_worklane_database, worklane_env
from tests.support.workers import WorkerProcess, wait_for

pytestmark = [pytest.mark.processes, pytest.mark.postgres_only]

DATABASE = "worklane"
VIEWER = "vic@example.com"


@pytest.fixture(scope="module")
def cluster():
    """A private cluster with Worklane's roles and database, migrated, holding Acme and WEB-1."""
    with PostgresCluster.create() as cluster:
        yield with_worklane_database(cluster, DATABASE)


def app_env(test_env, cluster, **env: str) -> dict[str, str]:
    """The environment of an app (or worker) on the private cluster."""
    return worklane_env(test_env, cluster, DATABASE, **env)


def migrate_and_seed(app, cluster) -> None:
    """Bring the cluster's database to the migration head, with Acme and WEB-1 (once)."""
    with app.app_context():
        upgrade(directory=str(PROJECT_ROOT / "migrations"))
        if cluster.psql("SELECT count(*) FROM organizations", DATABASE).strip() == "0":
            team = make_acme(members={VIEWER: "viewer"})
            team.add_issue("Restarts cost nothing")
            team.add_issue("Nobody has opened this one yet")
            db.session.commit()
        db.session.remove()


@pytest.fixture
def connect_retry_seconds() -> str:
    """The served app's DATABASE_CONNECT_RETRY_SECONDS: none, so that a stopped database is
    answered at once (a test may parametrize it)."""
    return "0"


@pytest.fixture
def served(app, cluster, make_app, test_env, connect_retry_seconds):
    """The app on the private cluster, served by waitress, with two pages whose connection is cut
    under them: one answers with the error; one swallows it, leaving the session failed, and
    then fails before its view (a fault: 500)."""
    if not cluster.running:
        cluster.start()
    served_app = make_app(app_env(test_env, cluster, DATABASE_CONNECT_RETRY_SECONDS=connect_retry_seconds))
    served_app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: a fault gets the 500 page
    migrate_and_seed(served_app, cluster)

    def cut_connection():
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
        cluster.psql(f"SELECT pg_terminate_backend({pid})")
        db.session.execute(text("SELECT 1"))

    @served_app.get("/faults/cut-connection")
    def _cut_connection():
        cut_connection()
        return "the connection survived"

    @served_app.before_request
    def _fails_after_a_cut():
        # Before the view, so nothing has rolled the session back when the error page renders.
        if request.path == "/faults/fails-after-a-cut":
            with contextlib.suppress(DBAPIError):
                cut_connection()
            raise RuntimeError("a fault after the connection was cut")

    with LiveServer(served_app) as server:
        yield server


def signed_in(server, email: str = OWNER) -> HttpBrowser:
    browser = HttpBrowser(server.url)
    browser.log_in(email)
    return browser


def assert_error_page(page, status: int, title: str) -> None:
    """The layout's error page (not a bare fallback or the server's own text) with ``title``."""
    assert page.status == status, (page.status, page.body)
    assert title in page.body and "<footer" in page.body, page.body


def test_the_next_requests_after_a_restart_succeed(cluster, served):
    """After `pg_ctl restart -m fast` between requests, the next signed-in and public pages answer 200."""
    browser = signed_in(served)
    assert browser.open("/acme/issues/WEB-1").status == 200
    cluster.restart()
    page = browser.open("/acme/issues/WEB-2")  # not cached yet: read through a new connection
    assert page.status == 200, page.body
    assert "Nobody has opened this one yet" in page.body
    assert HttpBrowser(served.url).open("/login").status == 200


class RefusingListener:
    """Holds a stopped cluster's port: takes each connection and closes it at once, as a server
    that is shutting down or starting does; counts them."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.taken = 0
        threading.Thread(target=self._refuse, daemon=True).start()

    def _refuse(self):
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.sock.accept()
                connection.close()
                self.taken += 1

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.mark.parametrize("connect_retry_seconds", ["60"])
def test_a_request_arriving_while_the_database_restarts_waits_for_it(cluster, served):
    """A request that needs a new connection while the server refuses them (restarting) keeps
    trying, and answers 200 once the server is back, instead of failing."""
    browser = signed_in(served)
    cluster.stop()
    refusing = RefusingListener(cluster.port)
    try:
        answers = []
        threading.Thread(
            target=lambda: answers.append(browser.open("/acme/issues/WEB-1")), daemon=True
        ).start()
        # libpq tries twice per connection (with TLS, then without): four means it tried again.
        wait_for(lambda: refusing.taken >= 4 or answers, 30, "the request tries to connect again")
        assert answers == [], "the request gave up while the server was restarting"
    finally:
        refusing.close()
        cluster.start()
    wait_for(lambda: answers, 60, "the request answers once the server is back")
    assert answers[0].status == 200, answers[0].body


def test_readiness_reports_a_stopped_database_at_once(app, cluster, make_app, test_env):
    """/readyz says 503 for a stopped database without first waiting the connection retries pages get."""
    probed = make_app(
        {**test_env, "DATABASE_URL": cluster.url(DATABASE, APP_ROLE), "DATABASE_CONNECT_RETRY_SECONDS": "600"}
    )
    cluster.stop()
    try:
        answers = []
        client = probed.test_client()
        threading.Thread(target=lambda: answers.append(client.get("/readyz")), daemon=True).start()
        wait_for(lambda: answers, 30, "/readyz answers")
        assert answers[0].status_code == 503
    finally:
        cluster.start()


def test_a_request_whose_connection_is_cut_gets_503_and_the_next_one_works(served):
    """A request whose connection is cut under it answers the 503 page; the next request answers 200."""
    browser = signed_in(served)
    page = browser.open("/faults/cut-connection")
    assert_error_page(page, 503, "Temporarily unavailable")
    assert page.headers.get("Retry-After")
    assert browser.open("/acme/issues/WEB-1").status == 200


def test_the_500_page_renders_after_a_cut_connection_left_the_session_failed(served):
    """A fault after a cut connection (the session left needing a rollback) still gets the 500 page."""
    browser = signed_in(served)
    assert_error_page(browser.open("/faults/fails-after-a-cut"), 500, "Something went wrong")
    assert browser.open("/acme/issues/WEB-1").status == 200


def test_pages_answer_503_while_the_database_is_down_and_200_when_it_is_back(cluster, served):
    """With the database stopped, a page that needs it and the public login answer a 503 page
    saying so (with Retry-After), never a 500, while a page already cached is still served; once
    the database is started again they answer as before."""
    browser = signed_in(served)
    visitor = HttpBrowser(served.url)
    assert browser.open("/acme/issues/WEB-1").status == 200
    cluster.stop()
    try:
        login_page = visitor.open("/login")  # needs no database
        assert login_page.status == 200
        login = {"csrf_token": csrf_token_from(login_page.body), "email": OWNER, "password": PASSWORD}
        for page in (
            browser.open("/acme/issues/WEB-2"),
            browser.open("/acme/projects/"),
            visitor.open("/login", login),
        ):
            assert_error_page(page, 503, "Temporarily unavailable")
            assert page.headers.get("Retry-After")
        cached = browser.open("/acme/issues/WEB-1")  # its page and parts come from the cache
        assert cached.status == 200 and "Restarts cost nothing" in cached.body
    finally:
        cluster.start()
    wait_for(lambda: browser.open("/acme/issues/WEB-1").status == 200, 30, "the issue page answers again")
    assert visitor.open("/login", login).status == 303


def test_error_pages_render_while_the_database_is_down(cluster, served):
    """With the database stopped, signed-in people still get the 404 and 403 pages, not a bare text."""
    owner, viewer = signed_in(served), signed_in(served, VIEWER)
    assert owner.open("/acme/projects/").status == 200  # their accounts are read (and cached)
    assert viewer.open("/acme/projects/").status == 200
    cluster.stop()
    try:
        assert_error_page(owner.open("/no/such/page"), 404, "Page not found")
        assert_error_page(viewer.open("/acme/projects/new"), 403, "Not allowed")
    finally:
        cluster.start()


def test_a_database_that_never_answers_costs_a_quick_503(app, make_app, test_env):
    """A database address that takes the connection but never answers: the page answers 503 once
    the connect timeout has passed, instead of holding the request (and its thread) for minutes."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent_app = make_app(
            {
                **test_env,
                "DATABASE_URL": f"postgresql://{APP_ROLE}@127.0.0.1:{silent.getsockname()[1]}/{DATABASE}",
                "DATABASE_MIGRATION_URL": "",
                "DATABASE_CONNECT_TIMEOUT": "1",
            }
        )
        silent_app.add_url_rule("/faults/query", "query", lambda: str(db.session.scalar(text("SELECT 1"))))
        answers = []
        client = silent_app.test_client()
        threading.Thread(target=lambda: answers.append(client.get("/faults/query")), daemon=True).start()
        wait_for(lambda: answers, 30, "the page answers while the database is silent")
    assert answers[0].status_code == 503
    assert "Temporarily unavailable" in answers[0].get_data(as_text=True)


def test_a_job_run_while_the_database_is_away_fails_and_the_worker_runs_the_next(
    app, cluster, make_app, test_env, redis_client, tmp_path
):
    """A system check whose worker finds the database stopped fails as a job (no retry is declared
    for it); the worker process keeps running, and the next check, once the database is back,
    finishes."""
    env = app_env(test_env, cluster, DATABASE_CONNECT_RETRY_SECONDS="0")
    jobs_app = make_app(env)
    migrate_and_seed(jobs_app, cluster)
    with jobs_app.test_request_context():  # as the operator console starts one
        first = str(start_system_check().id)
        db.session.remove()
    cluster.stop()
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        failed = lambda: Job.fetch(first, connection=redis_client).get_status() == JobStatus.FAILED  # noqa: E731
        wait_for(failed, 60, "the job that found the database stopped fails")
        cluster.start()
        with jobs_app.test_request_context():
            second = str(start_system_check().id)
            db.session.remove()
        finished = f"SELECT status FROM tasks WHERE id = '{second}'"
        wait_for(
            lambda: cluster.psql(finished, DATABASE).strip() == "finished", 60, "the next check finishes"
        )
        assert worker.process.poll() is None, worker.output()
    finally:
        worker.stop()
        if not cluster.running:
            cluster.start()
