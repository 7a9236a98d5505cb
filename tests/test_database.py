"""The database layer: how transactions behave when web and worker processes write at once."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import BackgroundJob
from tests.accounts import login, make_org, make_user
from tests.conftest import DATABASE_KIND


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="SQLite's locking")
def test_a_request_that_reads_then_writes_survives_a_workers_commit(app, committed_db):
    """On SQLite a transaction that reads, then writes while a worker commits, waits instead of failing."""
    with app.app_context():
        engine = db.engine
        worker_done = threading.Event()

        def worker():
            with Session(engine) as session:
                session.add(BackgroundJob(kind="k", description="worker"))
                session.commit()
            worker_done.set()

        with Session(engine) as request:
            request.execute(select(BackgroundJob.id)).all()  # the request reads first
            thread = threading.Thread(target=worker)
            thread.start()
            time.sleep(0.3)
            assert not worker_done.is_set()  # the worker waits for the request's transaction
            request.add(BackgroundJob(kind="k", description="request"))
            request.commit()
        thread.join(10)
        assert worker_done.is_set()
        with Session(engine) as check:
            written = set(check.scalars(select(BackgroundJob.description)))
        assert written == {"worker", "request"}


@pytest.mark.skipif(DATABASE_KIND != "sqlite", reason="SQLite's locking")
def test_read_only_work_does_not_hold_the_write_lock(app, committed_db):
    """A long read-only snapshot (an export) on SQLite lets writers commit meanwhile."""
    from app.exports.writer import snapshot_session

    with app.app_context(), snapshot_session() as reader:
        reader.execute(select(BackgroundJob.id)).all()
        with Session(db.engine) as writer:
            writer.add(BackgroundJob(kind="k", description="written during the export"))
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
        worker.add(BackgroundJob(kind="k", description="a batch not yet committed"))
        worker.flush()  # the worker's transaction holds the write lock
        started = time.monotonic()
        response = client.get("/acme/members")
        waited = time.monotonic() - started
        worker.rollback()
    assert response.status_code == 200
    assert waited < 4  # not the 5 s busy timeout
