"""The database layer: how transactions behave when web and worker processes write at once."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest
from flask import request
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.queue.queues import enqueue
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Task, User
from app.models.base import utcnow
from tests.accounts import login, make_org, make_user
from tests.conftest import DATABASE_KIND
from tests.support.workers import WorkerProcess, wait_for

#: The tests below write the system's own tasks (no organization), which is done unscoped.
SYSTEM_TASKS = "test: the system's own tasks"


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="SQLite's locking")
def test_a_request_that_reads_then_writes_survives_a_workers_commit(app, committed_db):
    """On SQLite a transaction that reads, then writes while a worker commits, waits instead of failing."""
    with app.app_context():
        engine = db.engine
        worker_began, worker_done = threading.Event(), threading.Event()

        def worker():
            with engine.connect() as connection:
                sqlite = connection.connection.driver_connection
                # Called as SQLite starts to run a statement: BEGIN then waits for the write lock.
                sqlite.set_trace_callback(lambda sql: sql.startswith("BEGIN") and worker_began.set())
                try:
                    with unscoped(SYSTEM_TASKS), Session(bind=connection) as session:
                        session.add(Task(kind="k", description="worker"))
                        session.commit()
                finally:
                    sqlite.set_trace_callback(None)
            worker_done.set()

        with unscoped(SYSTEM_TASKS), Session(engine) as request:
            request.execute(select(Task.id)).all()  # the request reads first
            thread = threading.Thread(target=worker)
            thread.start()
            wait_for(worker_began.is_set, 10, "the worker's transaction begins")
            assert not worker_done.is_set()  # the worker waits for the request's transaction
            request.add(Task(kind="k", description="request"))
            request.commit()
        thread.join(10)
        assert worker_done.is_set()
        with unscoped(SYSTEM_TASKS), Session(engine) as check:
            written = set(check.scalars(select(Task.description)))
        assert written == {"worker", "request"}


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="SQLite's locking")
def test_read_only_work_does_not_hold_the_write_lock(app, committed_db):
    """A long read-only snapshot (an export) on SQLite lets writers commit meanwhile."""
    from app.exports.writer import snapshot_session

    with app.app_context(), unscoped(SYSTEM_TASKS), snapshot_session() as reader:
        reader.execute(select(Task.id)).all()
        with Session(db.engine) as writer:
            writer.add(Task(kind="k", description="written during the export"))
            writer.commit()


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="SQLite's locking")
def test_page_views_do_not_wait_for_a_writer(app, committed_db):
    """On SQLite a page view reads while a worker holds the write lock (an import between batches)."""
    with app.app_context():
        make_org(make_user("owner@example.com"), "Acme", "acme")
        db.session.commit()
        engine = db.engine
    client = app.test_client()
    login(client, "owner@example.com")
    with Session(engine) as worker:
        with unscoped(SYSTEM_TASKS):
            worker.add(Task(kind="k", description="a batch not yet committed"))
            worker.flush()  # the worker's transaction holds the write lock
        started = time.monotonic()
        response = client.get("/acme/members")
        waited = time.monotonic() - started
        worker.rollback()
    assert response.status_code == 200
    assert waited < 4  # not the 5 s busy timeout


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="SQLite's locking")
def test_a_page_view_that_writes_waits_for_a_worker_instead_of_failing(make_app, migrated_env, committed_db):
    """A GET that reads, then writes while a worker holds the write lock, waits and writes once."""
    app = make_app(migrated_env)
    runs = []

    def writes_on_get():
        runs.append(request.method)
        with unscoped(SYSTEM_TASKS):
            db.session.execute(select(Task.id)).all()
            db.session.add(Task(kind="k", description="written by a page view"))
            db.session.commit()
        return "written"

    app.add_url_rule("/writes-on-get", "writes_on_get", writes_on_get)
    with app.app_context():
        engine = db.engine
    with Session(engine) as worker:
        with unscoped(SYSTEM_TASKS):
            worker.add(Task(kind="k", description="a batch of the worker"))
            worker.flush()  # the worker's transaction holds the write lock
        committer = threading.Timer(1.0, worker.commit)
        committer.start()
        response = app.test_client().get("/writes-on-get")
        committer.join(10)
    assert response.status_code == 200
    assert runs == ["GET", "GET"]  # stopped at its first write, then run again as a writer
    with unscoped(SYSTEM_TASKS), Session(engine) as check:
        written = list(check.scalars(select(Task.description)))
    assert sorted(written) == ["a batch of the worker", "written by a page view"]


def _crawl_values(session) -> dict[str, str]:
    """A real value for every URL argument of the demo organization's pages."""
    from app.core.tenancy import unscoped
    from app.models import Issue, Project, Task

    with unscoped("test: URL values of the demo organization"):
        project = session.scalars(select(Project).order_by(Project.key)).first()
        issue = session.scalars(select(Issue).where(Issue.project_id == project.id)).first()
        task = session.scalars(select(Task).where(Task.tenant_id.is_not(None))).first()
        return {
            "org_slug": "acme",
            "project_key": project.key,
            "issue_ref": f"{project.key}-{issue.number}",
            "state": "todo",
            "chart": "throughput",
            "task_id": str(task.id) if task else str(uuid.uuid4()),
        }


def _mail_link_urls(app) -> list[str]:
    """The links of a sign-up's confirmation mail and of an email change's mail: GETs that write."""
    from app.auth.services import EMAIL_CHANGE_TOKEN, VERIFY_TOKEN
    from app.core.security import make_token

    with app.app_context():
        new = make_user("newcomer@example.com", name="Nina Newcomer", verified=False)
        mover = make_user("mover@example.com", name="Max Mover")
        mover.pending_email = "moved@example.com"
        db.session.commit()
        verify = make_token(VERIFY_TOKEN, {"u": str(new.id), "e": new.email})
        change = make_token(EMAIL_CHANGE_TOKEN, {"u": str(mover.id), "e": "moved@example.com"})
    return [f"/verify/{verify}", f"/account/email/confirm/{change}"]


def _export_download_url(app, client) -> str:
    """The signed link to a real export file of the demo organization (its page shows one)."""
    from app.core.storage import file_store
    from app.core.tenancy import tenant_context
    from app.exports.services import export_key
    from app.models import Organization

    with app.app_context():
        org = db.session.scalar(select(Organization).where(Organization.slug == "acme"))
        with tenant_context(org.id):
            path = file_store().path(export_key("acme-2026-11-25-101530.zip"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip archive
    page = client.get("/acme/settings/export").get_data(as_text=True)
    return (
        re.search(r'href="(/acme/settings/export/download\?token=[^"]+)"', page)
        .group(1)
        .replace("&amp;", "&")
    )


@pytest.mark.processes
def test_no_page_view_fails_while_a_worker_writes(app, committed_db, migrated_env, redis_client, tmp_path):
    """Every page of a member, writing ones too (reports, export downloads), answers while a worker writes."""
    from app.core.tenancy import unscoped
    from app.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo
    from app.models import AuditEvent

    with app.app_context():
        seed_demo()
        db.session.commit()
    client = app.test_client()
    login(client, DEMO_EMAIL, DEMO_PASSWORD)
    download_url = _export_download_url(app, client)
    mail_links = _mail_link_urls(app)
    with app.app_context():
        writer = enqueue("tests.support.jobs.write_in_batches", "import", 1.0, 0.2, timeout=900)
    worker = WorkerProcess(migrated_env, tmp_path / "worker.log")
    problems, answered = [], {}
    try:
        wait_for(lambda: redis_client.exists("import:writing"), 60, "the worker to start writing")
        with app.app_context():
            values = _crawl_values(db.session)
        urls = [download_url, *mail_links]
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in rule.methods or rule.endpoint in ("static", "auth.logout"):
                continue
            args = {name: values.get(name, "x") for name in rule.arguments}
            urls.append(rule.build(args, append_unknown=False)[1])
        for url in urls:
            try:
                response = client.get(url)
            except Exception as exc:  # the test app lets a view's error through instead of a 500
                problems.append(f"GET {url} failed: {str(exc).splitlines()[0]}")
                continue
            response.close()
            answered[url] = response.status_code
            if response.status_code >= 500:
                problems.append(f"GET {url} answered {response.status_code}")
        still_writing = writer.get_status(refresh=True) == "started"
    finally:
        redis_client.set("import:stop", "1")
        worker.stop()
    assert problems == [], "\n".join(problems)
    assert (
        answered["/acme/reports"] == 200
        and answered["/acme/projects/" + values["project_key"] + "/reports"] == 200
    )
    assert answered[download_url] == 200
    assert still_writing  # the worker wrote, batch after batch, from before the first page to the last
    with app.app_context(), unscoped("test: the download's audit record"):
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "export.downloaded"))
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "newcomer@example.com")).email_verified_at
        assert db.session.scalar(select(User).where(User.email == "moved@example.com")) is not None


def test_a_get_that_writes_flashes_its_message_once(app, committed_db):
    """A GET link that writes (sign-up confirmation) shows its message once, even run twice on SQLite."""
    verify, _change = _mail_link_urls(app)
    page = app.test_client().get(verify, follow_redirects=True).get_data(as_text=True)
    assert page.count("Your email address is confirmed") == 1


def test_a_get_run_again_as_a_writer_starts_from_the_session_it_found(make_app, test_env, committed_db):
    """A GET that changes the session and then writes runs twice on SQLite: the second run sees
    the session as the request brought it, not as the first run left it (a sign-in's state taken
    out of it by the first run made the second refuse the sign-in)."""
    from flask import session

    from app.models import HeldSlug

    extra = make_app(test_env)

    def take_then_write():
        taken = session.pop("pending", None)
        session["runs"] = session.get("runs", 0) + 1
        db.session.add(HeldSlug(slug=f"held-{session['runs']}", held_until=utcnow()))
        db.session.flush()
        return f"taken={taken} runs={session['runs']}"

    def put():
        session["pending"] = "state"
        return "put"

    extra.add_url_rule("/test-session/put", "test_put", put)
    extra.add_url_rule("/test-session/take", "test_take", take_then_write)
    client = extra.test_client()
    client.get("/test-session/put")
    assert client.get("/test-session/take").get_data(as_text=True) == "taken=state runs=1"
