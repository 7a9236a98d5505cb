"""Background jobs: started from the web, queued in Redis, run by a separate worker process."""

from __future__ import annotations

import itertools
import os
import uuid
from datetime import timedelta

import pytest
from rq import Queue
from rq.job import Job

from app.core.queue.queues import HIGH, enqueue
from app.core.queue.tracking import TaskGone, tracked
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Task, User
from app.models.base import utcnow
from app.tasks.jobs import purge_finished_jobs
from app.tasks.services import QueueUnavailable, start_system_check
from tests.accounts import login, make_org, make_user
from tests.conftest import csrf_token_from, free_port, run_flask

OPERATOR = "ops@example.com"
#: System checks are the system's own tasks (no organization): tests reach them unscoped.
SYSTEM_TASKS = "test: the system's own tasks"


@pytest.fixture
def operator(app, db_session, monkeypatch):
    """ops@example.com is an operator (OPERATOR_EMAILS); visitor@example.com is a signed-up user."""
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({OPERATOR}))
    make_user(OPERATOR, name="Otto Operator")
    make_user("visitor@example.com", name="Vera Visitor")
    db_session.commit()
    return OPERATOR


def _start_check(client):
    """The operator console's "Run a system check" button."""
    token = csrf_token_from(client.get("/operators/").get_data(as_text=True))
    return client.post("/operators/system-check", data={"csrf_token": token})


def test_starting_a_check_records_and_queues_it(client, operator, db_session, redis_client):
    """An operator's check records a queued job and puts it on the high queue under the same id."""
    login(client, operator)
    response = _start_check(client)
    assert response.status_code == 303
    with unscoped(SYSTEM_TASKS):
        job = db_session.scalars(db.select(Task)).one()
    assert response.headers["Location"].endswith(f"/operators/system-check/{job.id}")
    assert job.status == Task.QUEUED
    queue = Queue(HIGH, connection=redis_client)
    assert queue.job_ids == [str(job.id)]
    rq_job = Job.fetch(str(job.id), connection=redis_client)
    assert rq_job.func_name == "app.tasks.jobs.run_system_check"
    assert rq_job.args == (str(job.id),)
    assert rq_job.meta["request_id"]


def test_only_operators_can_run_or_see_a_system_check(app, operator, db_session, redis_client):
    """Visitors and signed-in non-operators get 404 for the check and its result; nothing is queued."""
    with unscoped(SYSTEM_TASKS):
        job = Task(kind="system_check", description="System check")
        db_session.add(job)
        db_session.commit()
        job_id = job.id
    anonymous, member = app.test_client(), app.test_client()
    login(member, "visitor@example.com")
    for client, page in ((anonymous, "/login"), (member, "/account")):
        token = csrf_token_from(client.get(page).get_data(as_text=True))
        for _ in range(3):
            assert client.post("/operators/system-check", data={"csrf_token": token}).status_code == 404
        assert client.get(f"/operators/system-check/{job_id}").status_code == 404
        assert client.get(f"/operators/system-check/{job_id}/status?format=json").status_code == 404
    assert "system-check" not in anonymous.get("/").get_data(as_text=True)
    with unscoped(SYSTEM_TASKS):
        assert db_session.scalars(db.select(Task.id)).all() == [job_id]
    assert Queue(HIGH, connection=redis_client).count == 0


def test_system_checks_and_an_organizations_tasks_never_cross(app, operator, db_session):
    """An operator owning Acme finds no system check among Acme's tasks, no Acme task among system checks."""
    from app.core.tenancy import tenant_context

    ops = db_session.scalars(db.select(User).where(User.email == OPERATOR)).one()
    org = make_org(ops, "Acme", "acme")
    with tenant_context(org.id):
        task = Task(kind="export", description="Export", created_by_id=ops.id)
        db_session.add(task)
        db_session.commit()
        task_id = task.id
    with unscoped(SYSTEM_TASKS):
        check = Task(kind="system_check", description="System check")
        db_session.add(check)
        db_session.commit()
        check_id = check.id
    client = app.test_client()
    login(client, OPERATOR)
    assert client.get(f"/acme/tasks/{task_id}/status?format=json").status_code == 200
    assert client.get(f"/operators/system-check/{check_id}/status?format=json").status_code == 200
    assert client.get(f"/acme/tasks/{check_id}").status_code == 404
    assert client.get(f"/acme/tasks/{check_id}/status?format=json").status_code == 404
    assert client.get(f"/operators/system-check/{task_id}").status_code == 404
    assert client.get(f"/operators/system-check/{task_id}/status?format=json").status_code == 404
    assert "System check" not in client.get("/acme/tasks").get_data(as_text=True)


def test_starting_a_check_without_csrf_token_is_refused(client, operator, db_session, redis_client):
    """A post without its CSRF token is a 400 with a clear message and queues nothing."""
    login(client, operator)
    response = client.post("/operators/system-check")
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    with unscoped(SYSTEM_TASKS):
        assert db_session.scalars(db.select(Task)).all() == []
    assert Queue(HIGH, connection=redis_client).count == 0


@pytest.fixture
def redis_down_app(migrated_env, make_app):
    """An app whose Redis is unreachable (make_app gives the rate limiter its storage back after)."""
    return make_app({**migrated_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})


def test_queue_outage_marks_the_job_failed(redis_down_app, db_session):
    """With Redis unreachable, starting a check records why it never ran and says so."""
    app = redis_down_app
    with app.test_request_context("/"):
        with pytest.raises(QueueUnavailable) as excinfo:
            start_system_check()
        failed_id = excinfo.value.task.id
    with unscoped(SYSTEM_TASKS):
        job = db_session.scalars(db.select(Task)).one()
    assert job.id == failed_id
    assert job.status == Task.FAILED
    assert "queue is unavailable" in job.error


def test_pages_render_while_redis_is_down(redis_down_app, db_session):
    """With Redis unreachable, pages render (as a visitor) and a sign-in is refused with a clear reason."""
    app = redis_down_app
    client = app.test_client()
    page = client.get("/login")
    assert page.status_code == 200
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
            "email": "nobody@example.com",
            "password": "not the password",
        },
    )
    assert response.status_code == 422
    assert "The email or password is not correct." in response.get_data(as_text=True)


def test_job_pages_show_status_and_404_for_unknown_ids(client, operator, db_session):
    """The job page and its status fragment show progress; unknown or malformed ids are 404."""
    with unscoped(SYSTEM_TASKS):
        job = Task(kind="system_check", description="System check")
        db_session.add(job)
        db_session.commit()
        job_id = job.id
    login(client, operator)
    page = client.get(f"/operators/system-check/{job_id}").get_data(as_text=True)
    assert "<progress" in page and 'hx-trigger="every 1s"' in page
    status = client.get(f"/operators/system-check/{job_id}/status?format=json")
    assert status.json["status"] == "queued" and status.json["progress"] == 0
    assert client.get(f"/operators/system-check/{uuid.uuid4()}").status_code == 404
    assert client.get("/operators/system-check/not-a-uuid").status_code == 404


def test_enqueue_refuses_orm_objects(app, db_session):
    """Jobs take ids: passing a model instance to enqueue is a TypeError."""
    job = Task(kind="x", description="x")
    with app.test_request_context("/"), pytest.raises(TypeError, match="pass the object's id"):
        enqueue("app.tasks.jobs.run_system_check", job)


def test_tracked_marks_a_failing_job_failed(app, db_session):
    """A job body that raises leaves its record failed with the error."""
    with unscoped(SYSTEM_TASKS):
        job = Task(kind="x", description="x")
        db_session.add(job)
        db_session.commit()
        with pytest.raises(ZeroDivisionError), tracked(job.id):
            1 / 0  # noqa: B018
        db_session.expire_all()
        assert job.status == Task.FAILED
        assert "ZeroDivisionError" in job.error
        with pytest.raises(TaskGone), tracked(uuid.uuid4()):
            pass


def test_purge_keeps_recent_and_running_jobs(app, db_session):
    """The periodic purge deletes only week-old finished or failed job records."""
    old = utcnow() - timedelta(days=8)
    rows = {
        "old-finished": Task(kind="k", description="a", status="finished", finished_at=old),
        "old-failed": Task(kind="k", description="b", status="failed", finished_at=old),
        "recent": Task(kind="k", description="c", status="finished", finished_at=utcnow()),
        "running": Task(kind="k", description="d", status="started"),
    }
    with unscoped(SYSTEM_TASKS):
        db_session.add_all(rows.values())
        db_session.commit()
    assert purge_finished_jobs() == 2
    with unscoped(SYSTEM_TASKS):
        left = set(db_session.scalars(db.select(Task.description)))
    assert left == {"c", "d"}


@pytest.mark.processes
def test_worker_process_runs_a_job_started_from_the_web(
    app, committed_db, migrated_env, redis_client, monkeypatch
):
    """A check an operator starts over HTTP is run by a separate worker process; its result shows."""
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({OPERATOR}))
    with app.app_context():
        make_user(OPERATOR, name="Otto Operator")
        db.session.commit()
    client = app.test_client()
    login(client, OPERATOR)
    response = _start_check(client)
    job_url = response.headers["Location"]

    result = run_flask(migrated_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr

    status = client.get(job_url + "/status?format=json").json
    assert status["status"] == "finished", status
    assert status["progress"] == 100
    _worker_host, worker_pid = status["result"]["worker"].rsplit(":", 1)
    assert int(worker_pid) != os.getpid()
    with app.app_context():
        assert status["result"]["database"] == db.engine.dialect.name
    page = client.get(job_url).get_data(as_text=True)
    assert "Finished" in page and "hx-trigger" not in page
    assert Queue(HIGH, connection=redis_client).count == 0


@pytest.mark.processes
def test_worker_marks_failed_jobs_failed(app, committed_db, migrated_env, redis_client):
    """A job whose record is gone fails in the worker and lands in RQ's failed registry."""
    missing = str(uuid.uuid4())
    with app.test_request_context("/"):
        enqueue("app.tasks.jobs.run_system_check", missing, queue=HIGH, job_id=missing)
    result = run_flask(migrated_env, "worker", "--burst", "--queues", "high")
    assert result.returncode == 0, result.stderr
    queue = Queue(HIGH, connection=redis_client)
    assert missing in queue.failed_job_registry.get_job_ids()
    assert "TaskGone" in Job.fetch(missing, connection=redis_client).latest_result().exc_string


@pytest.mark.processes
def test_worker_refuses_unknown_queue(migrated_env):
    """`flask worker --queues` with a misspelt queue fails with a clear message."""
    result = run_flask(migrated_env, "worker", "--burst", "--queues", "hihg")
    assert result.returncode == 2
    assert "unknown queue(s) hihg" in result.stderr


@pytest.mark.processes
def test_jobs_run_as_their_own_tenant_and_never_inherit_one(app, migrated_env, redis_client):
    """One worker process runs jobs of tenant A, no tenant, tenant B in turn; each sees only its own."""
    from app.core.tenancy import tenant_context

    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    expected = {"a1": tenant_a, "none1": None, "b1": tenant_b, "a2": tenant_a, "none2": None}
    with app.test_request_context("/"):
        for label, tenant in expected.items():
            with tenant_context(tenant):
                enqueue("tests.support.jobs.record_tenant", "seen-tenants", label)
    result = run_flask(migrated_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr
    seen = [value.decode().split("=") for value in redis_client.lrange("seen-tenants", 0, -1)]
    assert {label: tenant for label, tenant, _pid in seen} == {
        label: str(tenant or "none") for label, tenant in expected.items()
    }
    assert len({pid for _label, _tenant, pid in seen}) == 1  # one worker process ran them all
    tenants_in_run_order = [tenant for _label, tenant, _pid in seen]
    # Consecutive jobs of different tenants (or none after a tenant) did run back to back.
    assert any(before != after for before, after in itertools.pairwise(tenants_in_run_order))
    assert "none" in tenants_in_run_order[1:]
