"""The mail outbox: mail is stored with what caused it and sent by workers, never dropped."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from redis import Redis
from sqlalchemy import select

from app.core.queue.queues import enqueue
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db, redis_connections
from app.issues import services as issues
from app.models import Project, User
from app.models.base import utcnow
from tests.accounts import make_user, post_form, sent_mails
from tests.conftest import free_port, run_flask
from tests.factories import make_acme
from tests.support.workers import WorkerProcess, wait_for

#: Worker settings for these tests: the sweep takes rows at once, a dead worker's claim lapses in 2 s.
FAST_SWEEP = {"OUTBOX_SWEEP_AFTER_SECONDS": "0", "OUTBOX_LEASE_SECONDS": "2"}


def _outbox_rows():
    from app.models import OutboxMail, TenantOutboxMail

    with unscoped("test: every outbox row"):
        return list(db.session.scalars(select(OutboxMail))) + list(
            db.session.scalars(select(TenantOutboxMail))
        )


def _job_arguments(redis_client) -> list[tuple]:
    from rq.job import Job

    jobs = []
    for key in redis_client.scan_iter("rq:job:*"):
        if redis_client.type(key) != b"hash":
            continue
        job = Job.fetch(key.decode().removeprefix("rq:job:"), connection=redis_client)
        jobs.append((job.func_name, job.args, job.kwargs, job.description))
    return jobs


# --- in the same transaction ---------------------------------------------------------------


def test_a_reset_mail_is_stored_with_the_request_and_its_job_takes_only_the_id(
    client, db_session, redis_client
):
    """A reset request stores the mail in the outbox; its job carries the row's id, never the link."""
    make_user("ada@example.com")
    db_session.commit()
    response = post_form(client, "/forgot-password", email="ada@example.com")
    assert response.status_code == 200
    [row] = _outbox_rows()
    assert row.recipient == "ada@example.com" and "/reset-password/" in row.text_body
    token = sent_mails(redis_client, "ada@example.com")[0].link().rsplit("/", 1)[1]
    jobs = _job_arguments(redis_client)
    assert [(func, args) for func, args, _kw, _d in jobs] == [
        ("app.core.mail_delivery.deliver_outbox_mail", (str(row.id),))
    ]
    assert all(token not in repr(job) for job in jobs)


def test_nothing_is_queued_before_the_commit_and_a_rollback_sends_nothing(app, db_session, redis_client):
    """Mail written in a transaction is queued at its commit; rolled back, nothing is stored or queued."""
    from app.core.mail import send_email

    acme = make_acme({"grace@example.com": "member"})
    olive, grace, project = acme.owner, acme.people["grace@example.com"], acme.projects["WEB"]
    db_session.commit()
    with app.test_request_context("/"):
        send_email("ada@example.com", "password_changed", name="Ada")
        with tenant_context(acme.id):
            issues.create_issue(project, olive, "Broken login", assignee_ids=[grace.id])
        # The account mail is in the transaction; the notification's is written by its commit.
        assert [row.recipient for row in _outbox_rows()] == ["ada@example.com"]
        assert _job_arguments(redis_client) == [], "nothing is queued before the commit"
        db.session.rollback()
        db.session.commit()
    assert _outbox_rows() == []
    assert sent_mails(redis_client) == []
    assert _job_arguments(redis_client) == []


def test_committed_mail_is_queued_by_id_as_its_organization(app, db_session, redis_client):
    """At commit each mail's delivery job is queued with its id, a notification's as its organization."""
    acme = make_acme({"grace@example.com": "member"})
    olive, grace, project = acme.owner, acme.people["grace@example.com"], acme.projects["WEB"]
    with app.app_context(), tenant_context(acme.id):
        issues.create_issue(project, olive, "Broken login", assignee_ids=[grace.id])
        db_session.commit()
        org_id = acme.id
    [row] = _outbox_rows()
    assert (row.tenant_id, row.recipient, row.status) == (org_id, "grace@example.com", "pending")
    [(func, args, kwargs, description)] = _job_arguments(redis_client)
    assert (func, args, kwargs) == ("app.core.mail_delivery.deliver_outbox_mail", (str(row.id),), {})
    assert description == "email notification to grace@example.com"
    [job_hash] = [key for key in redis_client.scan_iter("rq:job:*") if redis_client.type(key) == b"hash"]
    assert redis_client.hget(job_hash, "meta") is not None


# --- Redis away at commit, workers killed ------------------------------------------------------


@pytest.fixture
def committed_acme(app, committed_db):
    """Acme committed for worker processes: Olive owns it, Grace is a member, project WEB."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"})
        db.session.commit()
        return acme.id


@pytest.mark.processes
def test_mail_committed_while_redis_is_down_is_delivered_once_it_is_back(
    app, migrated_env, committed_acme, smtp_sink, redis_client, monkeypatch
):
    """Mail committed while Redis is unreachable (reset link, notification) goes out once it is back."""
    from app.auth.services import request_password_reset

    dead_redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    with monkeypatch.context() as patch, app.test_request_context("/"):
        # The queue's Redis is unreachable for these commits (a real client, a closed port).
        patch.setitem(app.extensions[redis_connections.extension_name], "client", dead_redis)
        request_password_reset("grace@example.com")
        db.session.commit()
        olive = db.session.scalar(select(User).where(User.email == "owner@example.com"))
        grace = db.session.scalar(select(User).where(User.email == "grace@example.com"))
        with tenant_context(committed_acme):
            project = db.session.scalars(select(Project)).one()
            issues.create_issue(project, olive, "Broken login", assignee_ids=[grace.id])
        db.session.commit()
    assert redis_client.keys("rq:*") == [], "nothing reached the queue"

    with app.app_context():
        enqueue("app.core.mail_delivery.sweep_outbox")
    env = {**migrated_env, "SMTP_URL": smtp_sink.url, **FAST_SWEEP}
    result = run_flask(env, "worker", "--burst")
    assert result.returncode == 0, result.stderr
    subjects = sorted(message["Subject"] for message in smtp_sink.messages())
    assert subjects == [
        "Reset your Worklane password",
        "[Acme] Olive Owner assigned you to WEB-1: Broken login",
    ]
    with app.app_context():
        assert {row.status for row in _outbox_rows()} == {"sent"}


class StallingHandler:
    """An SMTP server that takes a message, then never answers: the client is stuck mid-delivery."""

    def __init__(self):
        self.messages: list[bytes] = []
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content)
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return "451 gone"


@pytest.mark.processes
def test_a_worker_killed_mid_delivery_costs_at_most_one_duplicate(
    app, migrated_env, committed_acme, smtp_sink, redis_client, tmp_path
):
    """A worker SIGKILLed while SMTP holds the mail: another worker delivers it, same Message-ID."""
    from app.auth.services import request_password_reset

    stalling = StallingHandler()
    port = free_port()
    controller = Controller(stalling, hostname="127.0.0.1", port=port)
    controller.start()
    with app.test_request_context("/"):
        request_password_reset("grace@example.com")
        db.session.commit()
    first = WorkerProcess(
        {**migrated_env, **FAST_SWEEP, "SMTP_URL": f"smtp://127.0.0.1:{port}"}, tmp_path / "w1.log"
    )
    try:
        wait_for(lambda: stalling.messages or first.process.poll() is not None, 30, "the worker to send")
        assert stalling.messages, first.output()
        first.kill()
    finally:
        first.stop()
        stalling.release.set()
        controller.stop()
    with app.app_context():
        [row] = _outbox_rows()
        assert row.status == "sending" and row.attempts == 1
        claimed_until = row.due_at
    wait_for(lambda: utcnow() > claimed_until, 10, "the dead worker's claim to lapse")

    second = WorkerProcess({**migrated_env, **FAST_SWEEP, "SMTP_URL": smtp_sink.url}, tmp_path / "w2.log")
    try:
        with app.app_context():
            enqueue("app.core.mail_delivery.sweep_outbox", job_id="sweep-1")
        wait_for(lambda: smtp_sink.messages(), 30, "the mail to be delivered again\n" + second.output())
    finally:
        second.stop()
    [delivered] = smtp_sink.messages()
    stalled_id = next(
        line for line in stalling.messages[0].splitlines() if line.lower().startswith(b"message-id")
    )
    assert stalled_id.split(b":", 1)[1].strip().decode() == delivered["Message-ID"]
    with app.app_context():
        [row] = _outbox_rows()
        assert (row.status, row.attempts) == ("sent", 2)


# --- retries, giving up, purging ------------------------------------------------------------------


def _one_reset_mail(app, smtp_url):
    from app.auth.services import request_password_reset

    make_user("ada@example.com")
    db.session.commit()
    with app.test_request_context("/"):
        request_password_reset("ada@example.com")
        db.session.commit()
    [row] = _outbox_rows()
    return row.id


def test_a_refused_connection_is_retried_with_backoff_then_given_up_with_the_error(
    app, db_session, monkeypatch
):
    """Unreachable SMTP: the row waits longer after each attempt, then fails with the error recorded."""
    from app.core.mail_delivery import MAX_ATTEMPTS, deliver_outbox_mail

    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    mail_id = _one_reset_mail(app, app.config["SMTP_URL"])
    waits = []
    with app.app_context():
        for attempt in range(1, MAX_ATTEMPTS + 1):
            [row] = _outbox_rows()
            row.due_at = utcnow() - timedelta(seconds=1)  # its wait is over
            db.session.commit()
            before = utcnow()
            assert deliver_outbox_mail(str(mail_id)) is None
            db.session.expire_all()
            [row] = _outbox_rows()
            assert row.attempts == attempt and "Connection refused" in row.last_error
            if attempt < MAX_ATTEMPTS:
                assert row.status == "pending"
                waits.append((row.due_at - before).total_seconds())
        assert row.status == "failed"
        assert deliver_outbox_mail(str(mail_id)) is None and _outbox_rows()[0].attempts == MAX_ATTEMPTS
    assert waits == sorted(waits) and waits[0] >= 9 and waits[-1] > waits[0] * 10


@pytest.mark.processes
def test_a_row_waiting_for_its_retry_is_not_sent_early(app, db_session, smtp_sink, monkeypatch):
    """A delivery job run again before the row's backoff is over sends nothing."""
    from app.core.mail_delivery import deliver_outbox_mail

    monkeypatch.setitem(app.config, "SMTP_URL", smtp_sink.url)
    mail_id = _one_reset_mail(app, smtp_sink.url)
    with app.app_context():
        [row] = _outbox_rows()
        row.attempts, row.due_at = 1, utcnow() + timedelta(minutes=5)
        db.session.commit()
        assert deliver_outbox_mail(str(mail_id)) is None
    assert smtp_sink.messages() == []


@pytest.mark.processes
def test_a_delivered_mail_is_sent_once_and_purged_after_the_retention(
    app, db_session, smtp_sink, monkeypatch
):
    """Delivered: marked sent, not sent again; housekeeping deletes sent rows after a day, not before."""
    from app.core.mail_delivery import deliver_outbox_mail, purge_sent_mail

    monkeypatch.setitem(app.config, "SMTP_URL", smtp_sink.url)
    mail_id = _one_reset_mail(app, smtp_sink.url)
    with app.app_context():
        message_id = deliver_outbox_mail(str(mail_id))
        assert deliver_outbox_mail(str(mail_id)) is None
        [row] = _outbox_rows()
        assert row.status == "sent" and row.sent_at is not None
        assert purge_sent_mail() == 0
        row.sent_at = utcnow() - timedelta(hours=25)
        db.session.commit()
        assert purge_sent_mail() == 1
        assert _outbox_rows() == []
    [message] = smtp_sink.messages()
    assert message["Message-ID"] == message_id == f"<{mail_id}@worklane.localhost>"


def test_the_sweep_and_the_purge_are_periodic_jobs():
    """The outbox sweep runs every minute on the high queue; the purge of sent mail hourly."""
    from app.core.queue.registry import periodic_jobs

    periods = {job.func: (job.every_seconds, job.queue) for job in periodic_jobs()}
    assert periods["app.core.mail_delivery.sweep_outbox"] == (60, "high")
    assert periods["app.core.mail_delivery.purge_sent_mail"] == (3600, "low")


@pytest.mark.processes
def test_a_notification_committed_without_an_app_gets_its_mail_from_the_sweep(
    app, db_session, smtp_sink, monkeypatch
):
    """A notification committed where no app could render its mail is mailed by the next sweep."""
    from app.core.mail_delivery import sweep_outbox

    acme = make_acme({"grace@example.com": "member"})
    grace = acme.people["grace@example.com"]
    acme.add_issue("Broken login", assignee_ids=[grace.id])
    db_session.commit()  # no app context: nothing to render the mail with
    assert _outbox_rows() == []
    monkeypatch.setitem(app.config, "SMTP_URL", smtp_sink.url)
    monkeypatch.setitem(app.config, "OUTBOX_SWEEP_AFTER_SECONDS", 0)
    with app.app_context():
        assert sweep_outbox() == 1
        assert sweep_outbox() == 0
    [message] = smtp_sink.messages()
    assert message["Subject"] == "[Acme] Olive Owner assigned you to WEB-1: Broken login"
