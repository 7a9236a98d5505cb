"""The job layer: priorities, fair lanes per tenant, idempotent enqueues, who asked, queue depths."""

from __future__ import annotations

import uuid

import pytest
from flask_login import login_user
from rq.job import Job, JobStatus

from app.core.queue import lanes
from app.core.queue.queues import DEFAULT, HIGH, LOW, QUEUES, enqueue, queue_depths, queued_jobs
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Task
from app.tasks.jobs import run_system_check
from tests.accounts import make_user
from tests.conftest import run_flask
from tests.support.workers import WorkerProcess, wait_for

SYSTEM = "system"


def _enqueue_for(tenant, *args, **kwargs) -> Job:
    with tenant_context(tenant):
        return enqueue("tests.support.jobs.record_start", *args, **kwargs)


def _dequeue_all(redis_client) -> list[tuple[str, str]]:
    """(priority, job id) of every job, in the order workers would take them."""
    taken = []
    while (claimed := lanes.dequeue(redis_client, QUEUES, uuid.uuid4().hex, 60)) is not None:
        taken.append(claimed[:2])
    return taken


def test_higher_priorities_go_first_whatever_the_tenant(app, redis_client):
    """A high job of anyone is taken before default jobs, and those before low ones."""
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    with app.app_context():
        low = [_enqueue_for(tenant_a, "x", "low", queue=LOW).id for _ in range(3)]
        default = _enqueue_for(tenant_b, "x", "default", queue=DEFAULT).id
        high = _enqueue_for(None, "x", "high", queue=HIGH).id
    taken = _dequeue_all(redis_client)
    assert taken == [(HIGH, high), (DEFAULT, default)] + [(LOW, job_id) for job_id in low]


def test_lanes_take_turns(app, redis_client):
    """Within a priority each tenant (and the system) gets one job per turn, whoever queued more."""
    tenants = {"a": uuid.uuid4(), "b": uuid.uuid4(), "c": uuid.uuid4(), SYSTEM: None}
    owner = {}
    with app.app_context():
        for name, count in (("a", 6), ("b", 3), ("c", 1), (SYSTEM, 2)):
            for _ in range(count):
                owner[_enqueue_for(tenants[name], "x", name).id] = name
    order = [owner[job_id] for _priority, job_id in _dequeue_all(redis_client)]
    assert sorted(order[:4]) == ["a", "b", "c", SYSTEM]
    assert sorted(order[4:7]) == ["a", "b", SYSTEM]
    assert order[7:] == ["a", "b", "a", "a", "a"]


def test_queue_depths_sum_every_lane(app, redis_client):
    """Depth per priority counts every tenant's jobs, and the oldest waiting job's age is known."""
    with app.app_context():
        for tenant, count in ((uuid.uuid4(), 3), (uuid.uuid4(), 2)):
            for _ in range(count):
                _enqueue_for(tenant, "x", "t")
        _enqueue_for(None, "x", "s", queue=HIGH)
    depths = queue_depths(redis_client)
    assert depths[DEFAULT]["jobs"] == 5 and depths[DEFAULT]["lanes"] == 2
    assert depths[DEFAULT]["oldest_age_seconds"] >= 0
    assert depths[HIGH]["jobs"] == 1
    assert depths[LOW] == {"jobs": 0, "lanes": 0, "oldest_age_seconds": None}
    assert len(queued_jobs(DEFAULT, redis_client)) == 5


def test_jobs_record_tenant_and_acting_user(app, db_session, redis_client):
    """A job records its tenant and the acting user: the logged-in one, or the one named explicitly."""
    user = make_user()
    tenant = uuid.uuid4()
    other = uuid.uuid4()
    with app.test_request_context("/"), tenant_context(tenant):
        login_user(user)
        from_request = enqueue("tests.support.jobs.count_run", "runs")
        explicit = enqueue("tests.support.jobs.count_run", "runs", acting_user_id=other)
    with app.app_context():
        system = enqueue("tests.support.jobs.count_run", "runs")
    assert from_request.meta["tenant_id"] == str(tenant)
    assert from_request.meta["user_id"] == str(user.id)
    assert explicit.meta["user_id"] == str(other)
    assert "tenant_id" not in system.meta and "user_id" not in system.meta


@pytest.mark.processes
def test_enqueuing_the_same_job_id_twice_runs_it_once(app, migrated_env, redis_client):
    """A job id is an idempotency key: enqueued twice, before or after it ran, the job runs once."""
    with app.app_context():
        first = enqueue("tests.support.jobs.count_run", "runs", job_id="nightly-report-42")
        again = enqueue("tests.support.jobs.count_run", "runs", job_id="nightly-report-42")
    assert again.id == first.id
    assert queue_depths(redis_client)[DEFAULT]["jobs"] == 1
    result = run_flask(migrated_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr
    with app.app_context():
        after_run = enqueue("tests.support.jobs.count_run", "runs", job_id="nightly-report-42")
    assert after_run.get_status() == JobStatus.FINISHED
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    assert int(redis_client.get("runs")) == 1


def test_a_system_check_run_twice_changes_nothing_more(app, db_session):
    """Run again after it finished, the system check returns the recorded result and touches nothing."""
    with unscoped("test: the system's own tasks"):
        job = Task(kind="system_check", description="System check")
        db_session.add(job)
        db_session.commit()
        with app.app_context():
            first = run_system_check(str(job.id))
            finished_at = job.finished_at
            second = run_system_check(str(job.id))
        db_session.expire_all()
        assert second == first
        assert job.finished_at == finished_at and job.status == Task.FINISHED
        assert db_session.scalar(db.select(db.func.count()).select_from(Task)) == 1


@pytest.mark.processes
def test_a_flood_from_one_tenant_does_not_delay_another(app, migrated_env, redis_client, tmp_path):
    """Tenant A queues 2,000 jobs; B's job and a system job start after at most (lanes x workers) of A's."""
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    flood = 2000
    with app.app_context(), tenant_context(tenant_a):
        for _ in range(flood):
            enqueue("tests.support.jobs.record_start", "started", "a")
    workers = [WorkerProcess(migrated_env, tmp_path / f"worker-{n}.log") for n in range(2)]
    try:
        wait_for(lambda: redis_client.llen("started") >= 20, 60, "tenant A's jobs to be running")
        before = redis_client.llen("started")
        with app.app_context():
            _enqueue_for(tenant_b, "started", "b")
            _enqueue_for(None, "started", SYSTEM)
        wait_for(
            lambda: {b"b", SYSTEM.encode()} <= set(redis_client.lrange("started", before, -1)),
            60,
            "B's job and the system job to start",
        )
        started = [value.decode() for value in redis_client.lrange("started", before, -1)]
    finally:
        for worker in workers:
            worker.stop()
    lanes_with_work, worker_count = 3, len(workers)
    for label in ("b", SYSTEM):
        a_jobs_first = started[: started.index(label)].count("a")
        assert a_jobs_first <= lanes_with_work * worker_count, (label, started[:20])
    # B did not wait for the flood: most of A's jobs were still waiting when it ran.
    assert queue_depths(redis_client)[DEFAULT]["jobs"] > flood // 2
