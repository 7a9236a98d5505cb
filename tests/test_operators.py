"""The operator console and /metrics: queue health for operators only, failed jobs retried or deleted."""

from __future__ import annotations

import re

import pytest
from rq import Worker
from rq.job import Job

from app.core.queue import lanes
from app.core.queue.queues import DEFAULT, enqueue, failed_jobs, queue_depths
from app.core.tenancy import tenant_context
from tests.accounts import login, make_org, make_user, post_form
from tests.conftest import csrf_token_from, run_flask
from tests.factories import make_acme
from tests.support.workers import WorkerProcess, wait_for
from workers.scheduler import enqueue_due

JOB = "tests.support.jobs.fail_until_allowed"
TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def operators(app, db_session, monkeypatch):
    """ops@example.com is an operator; owner@example.com owns Acme and is not one."""
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({"ops@example.com"}))
    make_user("ops@example.com", name="Otto Operator")
    acme = make_acme(projects=())
    db_session.commit()
    return acme.id


def _failed_job(app, org_id, key: str) -> str:
    """A job of Acme's that failed in a real worker; returns its id."""
    with app.app_context(), tenant_context(org_id):
        job = enqueue(JOB, key)
    return job.id


def test_the_console_is_404_for_everyone_but_operators(app, operators):
    """Visitors, tenant owners and their POSTs get 404; an operator gets the console."""
    anonymous, owner, operator = app.test_client(), app.test_client(), app.test_client()
    login(owner, "owner@example.com")
    login(operator, "ops@example.com")
    assert anonymous.get("/operators/").status_code == 404
    assert owner.get("/operators/").status_code == 404
    owner_page = owner.get("/account").get_data(as_text=True)
    token = csrf_token_from(owner_page)
    assert owner.post("/operators/jobs/x/retry", data={"csrf_token": token}).status_code == 404
    assert owner.post("/operators/jobs/x/delete", data={"csrf_token": token}).status_code == 404
    page = operator.get("/operators/")
    assert page.status_code == 200
    assert "Operator console" in page.get_data(as_text=True)


@pytest.mark.processes
def test_console_shows_queues_workers_scheduler_and_failed_jobs(
    app, operators, migrated_env, redis_client, tmp_path
):
    """Waiting jobs per priority, a live worker, the scheduler's heartbeat and a failed job with its error."""
    failed_id = _failed_job(app, operators, "never-allowed")
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    with app.app_context(), tenant_context(operators):
        for _ in range(3):
            enqueue(JOB, "waiting", queue="low")
    enqueue_due(app, jobs=())  # a scheduler tick: its heartbeat
    client = app.test_client()
    login(client, "ops@example.com")
    html = client.get("/operators/").get_data(as_text=True)
    assert '<h2 id="queue-low" class="stat__label">Low queue</h2>\n    <p class="stat__value">3</p>' in html
    assert "waiting in 1 lane" in html
    assert "No worker is running" in html
    assert "ticking" in html
    assert failed_id in html and "RuntimeError: not allowed yet: never-allowed" in html
    assert f"/operators/jobs/{failed_id}/retry" in html and f"/operators/jobs/{failed_id}/delete" in html

    worker = WorkerProcess(migrated_env, tmp_path / "worker.log")
    try:

        def console_with_a_worker():
            # RQ registers a worker a moment before it records its first state ("starting" until
            # then), and the process may be slow to start: wait for the state in the worker's row.
            page = client.get("/operators/").get_data(as_text=True)
            row = re.search(
                r'· pid \d+</span></td>\s*<td><span class="badge[^"]*">(started|idle|busy)</span>', page
            )
            return page if "(1 alive)" in page and row else None

        html = wait_for(console_with_a_worker, 60, "the worker appears on the console with its state")
    finally:
        worker.stop()
    assert re.search(r"· pid \d+</span>", html), "the worker's process"


def test_a_worker_registered_but_not_yet_started_shows_as_starting(app, operators, redis_client):
    """A worker caught between registering and recording its first state is listed as starting."""
    Worker(["default"], connection=redis_client, name="just-born").register_birth()
    client = app.test_client()
    login(client, "ops@example.com")
    html = client.get("/operators/").get_data(as_text=True)
    assert "(1 alive)" in html and re.search(r'<span class="badge[^"]*">starting</span>', html)


@pytest.mark.processes
def test_retry_puts_a_failed_job_back_in_its_tenant_lane_and_a_worker_runs_it(
    app, operators, migrated_env, redis_client
):
    """Retry moves a failed tenant job into that tenant's lane; a real worker then runs it as that tenant."""
    job_id = _failed_job(app, operators, "allow-me")
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    assert [job["id"] for job in failed_jobs(redis_client)] == [job_id]
    client = app.test_client()
    login(client, "ops@example.com")
    response = post_form(client, "/operators/", f"/operators/jobs/{job_id}/retry")
    assert response.status_code == 303
    assert failed_jobs(redis_client) == []
    lane = lanes.tenant_lane(DEFAULT, operators)
    assert [value.decode() for value in redis_client.lrange(lane, 0, -1)] == [job_id]
    assert queue_depths(redis_client)[DEFAULT]["jobs"] == 1
    assert "is queued again" in client.get("/operators/").get_data(as_text=True)

    redis_client.set("allow-me", "1")
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    assert [value.decode() for value in redis_client.lrange("allow-me:ran", 0, -1)] == [str(operators)]
    assert Job.fetch(job_id, connection=redis_client).get_status() == "finished"


@pytest.mark.processes
def test_delete_removes_a_failed_job(app, operators, migrated_env, redis_client):
    """Delete forgets the failed job and its record; a second delete is a clear message, not an error."""
    job_id = _failed_job(app, operators, "never-allowed")
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    client = app.test_client()
    login(client, "ops@example.com")
    confirm = client.get(f"/operators/jobs/{job_id}/delete").get_data(as_text=True)
    assert f"Delete the failed job {job_id}?" in confirm and "will not run again" in confirm
    assert failed_jobs(redis_client) != []  # asking deletes nothing
    token = csrf_token_from(confirm)
    assert client.post(f"/operators/jobs/{job_id}/delete", data={"csrf_token": token}).status_code == 303
    assert failed_jobs(redis_client) == []
    assert not redis_client.exists(Job.key_for(job_id))
    again = client.post(f"/operators/jobs/{job_id}/delete", data={"csrf_token": token})
    assert again.status_code == 303
    assert "not in the failed list any more" in client.get("/operators/").get_data(as_text=True)
    gone = client.get(f"/operators/jobs/{job_id}/delete")  # the question about a job already gone
    assert gone.status_code == 303
    assert "not in the failed list any more" in client.get("/operators/").get_data(as_text=True)


def test_metrics_need_the_token_and_give_the_series(app, client, redis_client, monkeypatch, db_session):
    """/metrics is 404 without METRICS_TOKEN, 401 without the bearer token, and Prometheus text with it."""
    assert client.get("/metrics").status_code == 404
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    org = make_org(make_user("owner@example.com"))
    db_session.commit()
    with app.app_context(), tenant_context(org.id):
        enqueue(JOB, "waiting")
        enqueue(JOB, "waiting")
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    body = response.get_data(as_text=True)
    for line in (
        "# TYPE worklane_queue_jobs gauge",
        'worklane_queue_jobs{queue="default"} 2',
        'worklane_queue_jobs{queue="high"} 0',
        'worklane_queue_lanes{queue="default"} 1',
        'worklane_jobs_failed{queue="default"} 0',
        "worklane_workers_alive 0",
        'worklane_queue_oldest_job_age_seconds{queue="high"} 0',
    ):
        assert line in body.splitlines(), line
    assert "worklane_scheduler_heartbeat_age_seconds" not in body
    enqueue_due(app, jobs=())
    body = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    assert "worklane_scheduler_heartbeat_age_seconds " in body


def test_operator_emails_and_metrics_token_come_from_the_environment(tmp_path):
    """OPERATOR_EMAILS is a comma-separated list compared without case; no token or operator by default."""
    from app.config import TestingConfig

    base = {
        "WORKLANE_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "sqlite:///unused.db",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    config = TestingConfig.from_env(
        {**base, "OPERATOR_EMAILS": " Ops@Example.com, ,sre@example.com ", "METRICS_TOKEN": "t"}
    )
    operators = config.OPERATOR_EMAILS
    assert operators == frozenset({"ops@example.com", "sre@example.com"})
    assert config.METRICS_TOKEN == "t"
    empty = TestingConfig.from_env(base)
    nobody = empty.OPERATOR_EMAILS
    assert nobody == frozenset() and empty.METRICS_TOKEN is None
