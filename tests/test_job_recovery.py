"""No job is lost: workers killed mid-job or between dequeue and start, retries, failed jobs."""

from __future__ import annotations

import io
import logging
import os
import signal
import smtplib
import time
import uuid

import pytest
from rq import Retry
from rq.job import Job, JobStatus

from app.core.queue import lanes
from app.core.queue.queues import DEFAULT, enqueue, failed_jobs, get_queue, queue_depths, transient_mail_error
from app.core.tenancy import tenant_context
from tests.conftest import run_flask
from tests.support.workers import WorkerProcess, wait_for
from workers.maintenance import run_maintenance
from workers.worker import AppWorker, warn_unless_noeviction

#: The promise (docs/architecture.md): with the production settings a killed worker's job is
#: back on its queue or in the failed registry within 25 s. The tests run with shorter
#: periods (TestingConfig) and hold them to this generous bound.
RECOVERED_WITHIN_SECONDS = 30


def _started(redis_client, name: str) -> list[tuple[str, int, float]]:
    entries = [value.decode().split() for value in redis_client.lrange(f"started:{name}", 0, -1)]
    return [(job_id, int(pid), float(at)) for job_id, pid, at in entries]


def _claim_expiry(redis_client, job) -> float:
    """When the job's claim in the started registry runs out unless its worker renews it (0: none)."""
    claims = redis_client.zrange(lanes.started_registry_key(job.origin), 0, -1, withscores=True)
    return max((score for member, score in claims if member.decode().startswith(f"{job.id}:")), default=0)


@pytest.mark.processes
def test_a_job_whose_worker_is_killed_mid_job_runs_again(app, migrated_env, redis_client, tmp_path):
    """A worker SIGKILLed mid-job takes its work horse with it; another worker re-runs the job in time."""
    with app.app_context(), tenant_context(uuid.uuid4()):
        job = enqueue("tests.support.jobs.block_until_released", "mid-job", retry=Retry(max=2, interval=1))
    first = WorkerProcess(migrated_env, tmp_path / "first.log")
    try:
        wait_for(lambda: _started(redis_client, "mid-job"), 30, "the job to start")
        [(_job_id, horse_pid, _at)] = _started(redis_client, "mid-job")
        killed_at = first.kill_mid_job(horse_pid)
    finally:
        first.stop()
    redis_client.rpush("release:mid-job", "go")
    second = WorkerProcess(migrated_env, tmp_path / "second.log")
    try:
        wait_for(
            lambda: job.get_status(refresh=True) == JobStatus.FINISHED,
            RECOVERED_WITHIN_SECONDS + 10,
            "the job to be re-run and finish\n" + second.output()[-2000:],
        )
    finally:
        second.stop()
    runs = _started(redis_client, "mid-job")
    assert len(runs) == 2
    assert runs[1][2] - killed_at < RECOVERED_WITHIN_SECONDS
    assert Job.fetch(job.id, connection=redis_client).retries_left == 1  # the crash used one retry


@pytest.mark.processes
@pytest.mark.parametrize("retry", [Retry(max=1), Retry(max=1, interval=1)], ids=["at-once", "after-backoff"])
def test_a_job_recovered_from_a_killed_worker_goes_first_in_its_lane(
    app, migrated_env, redis_client, tmp_path, retry
):
    """A killed worker's job runs again before the jobs its organization queued behind it."""
    tenant = uuid.uuid4()
    with app.app_context(), tenant_context(tenant):
        victim = enqueue("tests.support.jobs.block_until_released", "victim", retry=retry)
    first = WorkerProcess(migrated_env, tmp_path / "first.log")
    try:
        wait_for(lambda: _started(redis_client, "victim"), 30, "the job to start")
        [(_job_id, horse_pid, _at)] = _started(redis_client, "victim")
        with app.app_context(), tenant_context(tenant):
            backlog = [enqueue("tests.support.jobs.record_start", "backlog", str(n)) for n in range(5)]
        first.kill_mid_job(horse_pid)
    finally:
        first.stop()
    redis_client.rpush("release:victim", "go")

    def recovered():
        run_maintenance(redis_client, 1)  # what every scheduler tick and idle worker does
        return victim.get_status(refresh=True) == JobStatus.QUEUED

    wait_for(recovered, RECOVERED_WITHIN_SECONDS, "the killed worker's job to be queued again")
    second = WorkerProcess(migrated_env, tmp_path / "second.log")
    try:
        wait_for(
            lambda: (
                redis_client.llen("backlog") == len(backlog)
                and victim.get_status(refresh=True) == JobStatus.FINISHED
            ),
            60,
            "every job to run",
        )
    finally:
        second.stop()
    victim_started = Job.fetch(victim.id, connection=redis_client).started_at
    backlog_started = [Job.fetch(job.id, connection=redis_client).started_at for job in backlog]
    assert all(victim_started < started for started in backlog_started), (victim_started, backlog_started)


@pytest.mark.parametrize("how", ["rq-list", "worker-retry"])
def test_a_job_put_back_goes_first_in_its_lane(app, redis_client, how):
    """A tenant's job put back by RQ (its own list, or a worker's retry) is served before its backlog."""
    tenant = uuid.uuid4()
    with app.app_context(), tenant_context(tenant):
        waiting = [enqueue("tests.support.jobs.record_start", "x", str(n)).id for n in range(3)]
        put_back = enqueue("tests.support.jobs.record_start", "x", "again", retry=Retry(max=1))
        redis_client.lrem(lanes.tenant_lane(DEFAULT, tenant), 1, put_back.id)
        if how == "rq-list":
            get_queue(DEFAULT).push_job_id(put_back.id)  # as RQ's own requeue does
        else:
            with redis_client.pipeline() as pipeline:  # as a worker retries a failed job
                put_back.retry(lanes.LaneQueue(DEFAULT, connection=redis_client), pipeline)
                pipeline.execute()
    taken = []
    while (claimed := lanes.dequeue(redis_client, [DEFAULT], uuid.uuid4().hex, 60)) is not None:
        taken.append(claimed[1])
    assert taken == [put_back.id, *waiting]


@pytest.mark.processes
@pytest.mark.parametrize(
    ("retry", "outcome"), [(None, "failed"), (Retry(max=1), "run once")], ids=["no-retries", "retried"]
)
def test_a_job_taken_by_a_worker_killed_before_starting_it_is_not_lost(
    app, migrated_env, redis_client, tmp_path, retry, outcome
):
    """Killed between dequeue and start: the job is run by another worker, or failed with its error."""
    with app.app_context():
        job = enqueue("tests.support.jobs.count_run", "runs", retry=retry)
    paused = WorkerProcess(migrated_env, tmp_path / "paused.log", module="tests.support.paused_worker")
    try:
        wait_for(
            lambda: redis_client.lindex("paused-after-dequeue", 0) == job.id.encode(),
            30,
            "the worker to take the job\n" + paused.output()[-2000:],
        )
        assert queue_depths(redis_client)["default"]["jobs"] == 0  # only the claim holds it now
        paused.kill()
        killed_at = time.time()
    finally:
        paused.stop()
    second = WorkerProcess(migrated_env, tmp_path / "second.log")
    try:
        if outcome == "failed":
            [entry] = wait_for(
                lambda: [e for e in failed_jobs(redis_client) if e["id"] == job.id],
                RECOVERED_WITHIN_SECONDS,
                "the job to land in the failed registry",
            )
            assert "AbandonedJobError" in entry["error"]
            assert entry["func"] == "tests.support.jobs.count_run"
            assert redis_client.get("runs") is None
        else:
            wait_for(lambda: redis_client.get("runs") == b"1", RECOVERED_WITHIN_SECONDS, "the job to run")
            wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, 10, "the job to finish")
        recovered_at = time.time()
    finally:
        second.stop()
    assert recovered_at - killed_at < RECOVERED_WITHIN_SECONDS
    assert int(redis_client.get("runs") or 0) == (0 if outcome == "failed" else 1)


@pytest.mark.processes
def test_a_long_job_keeps_its_claim_while_its_worker_lives(app, migrated_env, redis_client, tmp_path):
    """A job running far longer than the abandonment limit is not taken for lost: it runs exactly once."""
    lost_after = app.config["JOB_LOST_AFTER_SECONDS"]
    with app.app_context():
        job = enqueue("tests.support.jobs.block_until_released", "long", retry=Retry(max=2))
    workers = [WorkerProcess(migrated_env, tmp_path / f"w{n}.log") for n in range(2)]
    try:
        wait_for(lambda: _started(redis_client, "long"), 30, "the job to start")
        started_at = _started(redis_client, "long")[0][2]
        # The worker renews the claim at 2.5 times the limit and two maintenance passes on.
        renewed_at = started_at + 2.5 * lost_after + 2 * app.config["JOB_MAINTENANCE_SECONDS"]
        wait_for(
            lambda: _claim_expiry(redis_client, job) >= renewed_at + lost_after,
            60,
            "the worker to renew the job's claim far past the abandonment limit",
        )
        redis_client.rpush("release:long", "go")
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, 30, "the job to finish")
    finally:
        for worker in workers:
            worker.stop()
    assert len(_started(redis_client, "long")) == 1
    assert Job.fetch(job.id, connection=redis_client).retries_left == 2


@pytest.mark.processes
def test_failed_jobs_are_listed_with_their_error(app, migrated_env, redis_client):
    """A job that raises is listed by failed_jobs() with its tenant, function and traceback."""
    tenant = uuid.uuid4()
    with app.app_context(), tenant_context(tenant):
        job = enqueue("app.tasks.jobs.run_system_check", str(uuid.uuid4()))
    result = run_flask(migrated_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr
    [entry] = failed_jobs(redis_client)
    assert entry["id"] == job.id and entry["queue"] == "high"
    assert entry["tenant_id"] == str(tenant)
    assert entry["func"] == "app.tasks.jobs.run_system_check"
    assert "TaskGone" in entry["error"] and "Traceback" in entry["error"]


def test_mail_errors_worth_retrying_are_told_apart_from_final_ones():
    """Connection trouble and 4xx answers are retried; a 5xx answer or refused recipients are final."""
    assert transient_mail_error(ConnectionRefusedError(111, "refused"))
    assert transient_mail_error(TimeoutError("timed out"))
    assert transient_mail_error(smtplib.SMTPServerDisconnected("gone"))
    assert transient_mail_error(smtplib.SMTPResponseException(451, b"try again later"))
    assert not transient_mail_error(smtplib.SMTPResponseException(550, b"no such user"))
    assert not transient_mail_error(smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no")}))
    assert not transient_mail_error(ValueError("bad address"))


@pytest.mark.processes
def test_a_final_mail_error_is_not_retried(app, committed_db, migrated_env, redis_client, smtp_sink):
    """A mail failing with an error that will not pass (a refused header) is given up at once, error kept."""
    from app.extensions import db
    from app.models import OutboxMail

    with app.app_context():
        # A header that would inject a Bcc: building the message refuses it (a ValueError).
        mail = OutboxMail(
            recipient="ada@example.com\r\nBcc: eve@example.com",
            template="password_changed",
            subject="Subject",
            text_body="text",
            html_body="<p>html</p>",
        )
        db.session.add(mail)
        db.session.commit()
        job = enqueue("app.core.mail_delivery.deliver_outbox_mail", str(mail.id), description="mail")
    env = {**migrated_env, "SMTP_URL": smtp_sink.url}
    result = run_flask(env, "worker", "--burst", "--queues", "high")
    assert result.returncode == 0, result.stderr
    assert Job.fetch(job.id, connection=redis_client).get_status() == JobStatus.FINISHED
    with app.app_context():
        row = db.session.get(OutboxMail, mail.id)
        assert (row.status, row.attempts) == ("failed", 1) and "ValueError" in row.last_error
    assert smtp_sink.messages() == []


@pytest.mark.processes
def test_a_mail_job_run_again_sends_nothing_again(app, committed_db, migrated_env, redis_client, smtp_sink):
    """A delivery job that runs a second time (its worker died after sending) sends no second mail."""
    from app.core.mail import send_email
    from app.extensions import db

    with app.test_request_context("/"):
        mail_id = send_email("ada@example.com", "password_changed", name="Ada").id
        db.session.commit()
    env = {**migrated_env, "SMTP_URL": smtp_sink.url}
    assert run_flask(env, "worker", "--burst", "--queues", "high").returncode == 0
    redis_client.rpush("rq:queue:high", f"mail-{mail_id}")  # the same job handed out again
    assert run_flask(env, "worker", "--burst", "--queues", "high").returncode == 0
    assert len(smtp_sink.messages()) == 1


def test_queue_redis_must_not_evict(redis_client):
    """The worker warns when the queue Redis may evict keys; the test Redis is set up with noeviction."""
    assert warn_unless_noeviction(redis_client) is None
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        assert warn_unless_noeviction(redis_client) == "allkeys-lru"
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")


class _StreamTheSignalInterrupts(io.StringIO):
    """A log stream during whose write the process gets SIGTERM, as a supervisor may send it."""

    def write(self, text):
        os.kill(os.getpid(), signal.SIGTERM)
        return super().write(text)


def test_a_stop_request_lost_inside_a_log_call_still_stops_the_worker(app, redis_client, capsys):
    """SIGTERM landing while an idle worker writes a log line (logging swallows the stop) still stops it."""
    worker = AppWorker([DEFAULT], connection=redis_client, app=app)
    logger = logging.getLogger("tests.interrupted")
    logger.propagate = False
    handler = logging.StreamHandler(_StreamTheSignalInterrupts())
    logger.addHandler(handler)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker._install_signal_handlers()  # RQ's: SIGTERM raises StopRequested when no job runs
        worker.set_state("idle")
        logger.warning("a line written as the signal comes")  # StreamHandler.emit catches it all
        assert "StopRequested" in capsys.readouterr().err  # logging printed and swallowed the stop
        with app.app_context(), tenant_context(uuid.uuid4()):
            job = enqueue("tests.support.jobs.record_start", "x", "after the stop")
        assert worker.dequeue_job_and_maintain_ttl(timeout=1) is None
        assert job.get_status(refresh=True) == JobStatus.QUEUED
    finally:
        for signum, previous in handlers.items():
            signal.signal(signum, previous)
        logger.removeHandler(handler)
