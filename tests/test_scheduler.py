"""Periodic jobs: declared once, enqueued once per period however many schedulers run."""

from __future__ import annotations

import pytest
from rq import Queue

from app.core.queue.queues import LOW, QUEUES
from app.core.queue.registry import HEARTBEAT_KEY, PeriodicJob, periodic_jobs
from tests.conftest import run_flask
from workers.scheduler import enqueue_due

EVERY_MINUTE = PeriodicJob("test-job", "app.tasks.jobs.purge_finished_jobs", every_seconds=60)


def test_each_period_is_enqueued_once(app, redis_client):
    """Ticks within one period enqueue once; the next period enqueues again."""
    with app.app_context():
        first = enqueue_due(app, [EVERY_MINUTE], now=6000.0)
        again = enqueue_due(app, [EVERY_MINUTE], now=6030.0)
        next_period = enqueue_due(app, [EVERY_MINUTE], now=6060.0)
    assert first == ["periodic-test-job-100"]
    assert again == []
    assert next_period == ["periodic-test-job-101"]
    assert Queue(LOW, connection=redis_client).job_ids == first + next_period


def test_two_schedulers_enqueue_once(app, redis_client):
    """Two scheduler processes ticking in the same period produce one job."""
    with app.app_context():
        results = [enqueue_due(app, [EVERY_MINUTE], now=12000.0 + i) for i in range(2)]
    assert sorted(map(len, results)) == [0, 1]
    assert Queue(LOW, connection=redis_client).count == 1


def test_periodic_jobs_point_at_real_functions():
    """Every declared periodic job names an importable function and a known queue."""
    import importlib

    from app.core.queue.queues import QUEUES

    for job in periodic_jobs():
        module, _, name = job.func.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), job.func
        assert job.queue in QUEUES
        assert job.every_seconds > 0


@pytest.mark.processes
def test_scheduler_process_enqueues_due_jobs(migrated_env, redis_client):
    """`flask scheduler --once` enqueues the declared periodic jobs and leaves a heartbeat."""
    result = run_flask(migrated_env, "scheduler", "--once")
    assert result.returncode == 0, result.stderr
    ids = [job_id for name in QUEUES for job_id in Queue(name, connection=redis_client).job_ids]
    assert len(ids) == len(periodic_jobs())
    assert all(job_id.startswith("periodic-") for job_id in ids)
    assert redis_client.get(HEARTBEAT_KEY) is not None
