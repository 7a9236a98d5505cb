"""Periodic clean-ups: each runs once per period however many schedulers tick, and deletes only
what has expired."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import select

from app.core.queue.queues import QUEUES, enqueue
from app.core.queue.registry import periodic_jobs
from app.core.storage import file_store
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Invitation, Task
from app.models.base import utcnow
from tests.accounts import login, make_org, make_user
from tests.conftest import run_flask
from workers.scheduler import enqueue_due


def test_every_periodic_job_is_enqueued_once_per_period(app, redis_client):
    """However many schedulers tick within a period, each periodic job is queued once."""
    with app.app_context():
        ticks = [enqueue_due(app, periodic_jobs(), now=864000.0 + second) for second in (0, 1, 2)]
    assert len(ticks[0]) == len(periodic_jobs()) and ticks[1] == ticks[2] == []
    queued = [job_id for name in QUEUES for job_id in Queue(name, connection=redis_client).job_ids]
    assert sorted(queued) == sorted(ticks[0])
    names = {job.name for job in periodic_jobs()}
    assert {"nightly-exports", "delete-expired-exports", "delete-expired-invitations"} <= names


def _write(app, key: str, age_days: float) -> None:
    with app.app_context():
        store = file_store()
        with store.open_write(key) as stream:
            stream.write(b"zip")
        then = time.time() - age_days * 86400
        os.utime(store.path(key), (then, then))


def _run_job(app, migrated_env, path: str) -> None:
    """Queue the job ``path`` and run it in a burst worker."""
    with app.app_context():
        enqueue(path)
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0


def _left(app, column, reason: str) -> list:
    """The values of ``column`` in every organization's rows, sorted."""
    with app.app_context(), unscoped(reason):
        return sorted(db.session.scalars(select(column)).all())


@pytest.mark.processes
def test_export_files_older_than_the_retention_are_deleted(app, migrated_env):
    """Exports older than EXPORT_RETENTION_DAYS go, in every organization; newer ones and other files stay."""
    tenants = [uuid.uuid4(), uuid.uuid4()]
    keys = {
        "old": f"t/{tenants[0]}/exports/acme-old.zip",
        "old-b": f"t/{tenants[1]}/exports/beta-old.zip",
        "fresh": f"t/{tenants[0]}/exports/acme-new.zip",
        "upload": f"t/{tenants[0]}/imports/upload.csv",
    }
    assert app.config["EXPORT_RETENTION_DAYS"] == 7
    _write(app, keys["old"], 7.5)
    _write(app, keys["old-b"], 30)
    _write(app, keys["fresh"], 6.5)
    _write(app, keys["upload"], 30)
    _run_job(app, migrated_env, "app.exports.jobs.delete_expired_exports")
    with app.app_context():
        store = file_store()
        assert {name for name, key in keys.items() if store.exists(key)} == {"fresh", "upload"}


@pytest.mark.processes
def test_only_long_expired_invitations_are_deleted(app, committed_db, migrated_env):
    """Invitations expired over 30 days ago go; pending, recently expired and accepted ones stay."""
    now = utcnow()
    with app.app_context():
        owner = make_user("owner@example.com")
        org = make_org(owner, "Acme", "acme")
        with tenant_context(org.id):
            for email, expires, accepted in (
                ("pending@example.com", now + timedelta(days=3), None),
                ("recent@example.com", now - timedelta(days=5), None),
                ("old@example.com", now - timedelta(days=40), None),
                ("accepted@example.com", now - timedelta(days=400), now - timedelta(days=405)),
            ):
                db.session.add(
                    Invitation(email=email, role="member", expires_at=expires, accepted_at=accepted)
                )
            db.session.flush()
        db.session.commit()
    _run_job(app, migrated_env, "app.orgs.jobs.delete_expired_invitations")
    left = _left(app, Invitation.email, "test: every organization's invitations")
    assert left == ["accepted@example.com", "pending@example.com", "recent@example.com"]


@pytest.mark.processes
def test_only_tasks_that_ended_long_ago_are_deleted(app, committed_db, migrated_env):
    """Ended tasks go after 30 days (report computations after a day); running and recent ones stay."""
    now = utcnow()
    with app.app_context():
        org = make_org(make_user("owner@example.com"), "Acme", "acme")
        with tenant_context(org.id):
            for description, kind, status, ended in (
                ("old import", "import", Task.FINISHED, now - timedelta(days=31)),
                ("old failed export", "export", Task.FAILED, now - timedelta(days=40)),
                ("recent import", "import", Task.FINISHED, now - timedelta(days=29)),
                ("yesterday's report", "report", Task.FINISHED, now - timedelta(days=2)),
                ("today's report", "report", Task.FINISHED, now - timedelta(hours=3)),
                ("long running export", "export", Task.STARTED, None),
            ):
                db.session.add(Task(kind=kind, description=description, status=status, finished_at=ended))
            db.session.flush()
        db.session.commit()
    _run_job(app, migrated_env, "app.tasks.jobs.delete_old_tasks")
    left = _left(app, Task.description, "test: every organization's tasks")
    assert left == ["long running export", "recent import", "today's report"]


def test_sessions_expire_in_redis_by_themselves(app, owner, org, client, redis_client):
    """A session is a Redis key with an expiry (no clean-up job needed), and nothing indexes it."""
    login(client, "owner@example.com")
    keys = [key.decode() for key in redis_client.scan_iter("worklane:session:*")]
    assert keys, "logging in stores a session"
    idle = app.config["SESSION_IDLE_MINUTES"] * 60
    assert all(0 < redis_client.ttl(key) <= idle for key in keys)
    assert all(redis_client.type(key) == b"hash" for key in keys)
