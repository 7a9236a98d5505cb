"""Recomputing reports is a write: viewers may read reports but not queue their computation again."""

from __future__ import annotations

from sqlalchemy import select

from app.core.permissions import PERMISSIONS, VIEWER
from app.core.queue.queues import DEFAULT, queued_jobs
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Task
from tests.accounts import login
from tests.conftest import csrf_token_from
from tests.test_reports import acme  # noqa: F401  (the organization with a viewer)


def _report_jobs(redis_client):
    return [
        j for j in queued_jobs(DEFAULT, redis_client) if j.func_name == "app.reports.jobs.compute_reports"
    ]


def _fail_the_computation(client, acme, path):  # noqa: F811
    client.get(path)
    with tenant_context(acme.id):
        task = db.session.scalars(select(Task)).one()
        task.mark_failed("The database was unreachable.")
        db.session.commit()


def _statuses(acme):  # noqa: F811
    with tenant_context(acme.id):
        return sorted(t.status for t in db.session.scalars(select(Task)))


def test_recomputing_reports_is_not_a_viewer_permission():
    """The permission map gives the recomputation to the roles that write, not to viewers."""
    assert VIEWER not in PERMISSIONS["reports.recompute"]


def test_a_viewer_cannot_retry_a_report_computation(client, redis_client, acme):  # noqa: F811
    """A viewer sees the failure without a "Try again" button; posting the retry is 403 and queues nothing."""
    login(client, "vic@example.com")
    for page_path in ("/acme/projects/WEB/reports", "/acme/reports"):
        client.get(page_path)  # the first computation of each scope starts on its own
    with tenant_context(acme.id):
        for task in db.session.scalars(select(Task)):
            task.mark_failed("The database was unreachable.")
        db.session.commit()
    jobs_before = len(_report_jobs(redis_client))
    for page_path in ("/acme/projects/WEB/reports", "/acme/reports"):
        html = client.get(page_path).get_data(as_text=True)
        assert "The database was unreachable." in html and "Try again" not in html
        response = client.post(page_path + "/retry", data={"csrf_token": csrf_token_from(html)})
        assert response.status_code == 403
    assert _statuses(acme) == ["failed", "failed"]
    assert len(_report_jobs(redis_client)) == jobs_before


def test_a_member_can_still_retry(client, redis_client, acme):  # noqa: F811
    """A member gets the "Try again" button and a new attempt is queued."""
    login(client, "grace@example.com")
    _fail_the_computation(client, acme, "/acme/projects/WEB/reports")
    html = client.get("/acme/projects/WEB/reports").get_data(as_text=True)
    assert "Try again" in html
    response = client.post("/acme/projects/WEB/reports/retry", data={"csrf_token": csrf_token_from(html)})
    assert response.status_code == 303
    assert _statuses(acme) == ["failed", "queued"]
