"""An organization's tasks: run by real workers, followed on a page with a progress bar."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core.queue.queues import enqueue
from app.core.tenancy import tenant_context
from app.models import Task, User
from tests.accounts import login, make_org, make_user
from tests.conftest import run_flask
from tests.factories import make_acme

pytestmark = pytest.mark.processes


@pytest.fixture
def acme(app, committed_db):
    """Acme (owner Olive, member Grace, member Max), committed for the worker process to see."""
    with app.app_context():
        from app.extensions import db

        acme = make_acme({"grace@example.com": "member", "max@example.com": "member"}, projects=())
        db.session.commit()
        return acme.id


def _start(app, org_id, email, total, fail_at=None) -> str:
    """Record a counting task started by ``email`` and queue it, as the start pages do."""
    from app.extensions import db

    with app.app_context(), tenant_context(org_id):
        user_id = db.session.scalar(select(User.id).where(User.email == email))
        task = Task(kind="count", description="Counting", created_by_id=user_id)
        db.session.add(task)
        db.session.commit()
        enqueue("tests.support.jobs.count_to", str(task.id), total, fail_at=fail_at, job_id=str(task.id))
        return str(task.id)


def test_a_task_shows_progress_then_its_result(app, acme, migrated_env):
    """The task page polls while the task waits, then shows 100%, the message and the result."""
    task_id = _start(app, acme, "owner@example.com", 40)
    client = app.test_client()
    login(client, "owner@example.com")
    waiting = client.get(f"/acme/tasks/{task_id}").get_data(as_text=True)
    assert "Queued" in waiting and 'hx-trigger="every 1s"' in waiting
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    status = client.get(f"/acme/tasks/{task_id}/status?format=json").json
    assert status["status"] == "finished" and status["progress"] == 100
    assert status["result"] == {"counted": 40} and status["message"] == "Counted to 40."
    page = client.get(f"/acme/tasks/{task_id}").get_data(as_text=True)
    assert "Finished" in page and "hx-trigger" not in page and "Counted to 40." in page
    assert "Counting" in client.get("/acme/tasks").get_data(as_text=True)


def test_a_failed_task_shows_its_error(app, acme, migrated_env):
    """A task that fails shows the reason on its page, with the progress it had reached."""
    task_id = _start(app, acme, "owner@example.com", 10, fail_at=6)
    client = app.test_client()
    login(client, "owner@example.com")
    run_flask(migrated_env, "worker", "--burst")
    status = client.get(f"/acme/tasks/{task_id}/status?format=json").json
    assert status["status"] == "failed" and status["progress"] == 50
    assert status["error"] == "Step 6 could not be done."
    assert "Step 6 could not be done." in client.get(f"/acme/tasks/{task_id}").get_data(as_text=True)


def test_tasks_are_followed_by_their_starter_and_admins(app, acme):
    """A member sees their own tasks; other members get 404; owners and admins see every task."""
    graces = _start(app, acme, "grace@example.com", 3)
    olives = _start(app, acme, "owner@example.com", 3)
    grace, max_, olive = app.test_client(), app.test_client(), app.test_client()
    login(grace, "grace@example.com")
    login(max_, "max@example.com")
    login(olive, "owner@example.com")
    assert grace.get(f"/acme/tasks/{graces}").status_code == 200
    assert grace.get(f"/acme/tasks/{olives}").status_code == 404
    assert max_.get(f"/acme/tasks/{graces}/status").status_code == 404
    assert olive.get(f"/acme/tasks/{graces}").status_code == 200
    assert "Counting" not in max_.get("/acme/tasks").get_data(as_text=True)
    other = make_org_for(app, "bert@example.com")
    assert other.get(f"/acme/tasks/{graces}").status_code == 404


def make_org_for(app, email):
    """A client logged in as the owner of another organization."""
    from app.extensions import db

    with app.app_context():
        make_org(make_user(email), "Beta", "beta")
        db.session.commit()
    client = app.test_client()
    login(client, email)
    return client


def test_the_tasks_page_lists_what_people_asked_for(app, acme):
    """Imports and other asked-for tasks are listed; report computations started by viewing are not."""
    from app.extensions import db

    _start(app, acme, "owner@example.com", 3)
    with app.app_context(), tenant_context(acme):
        db.session.add(Task(kind="report", description="Reports of Acme"))
        db.session.commit()
    client = app.test_client()
    login(client, "owner@example.com")
    overview = client.get("/acme/").get_data(as_text=True)
    assert '<a href="/acme/tasks">Tasks</a>' in overview  # the navigation leads there
    page = client.get("/acme/tasks").get_data(as_text=True)
    assert "Counting" in page and "Reports of Acme" not in page
    assert '<a href="/acme/tasks" aria-current="page">Tasks</a>' in page
