"""Webhook deliveries made by real worker processes: a committed issue queues its delivery in the
organization's lane, a burst worker sends it signed, and a failed attempt comes back through the
periodic sweep once it is due."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from app.core.tenancy import tenant_context
from app.extensions import db
from app.issues import services as issues
from app.models import Project, User, WebhookAttempt, WebhookDelivery
from app.models.base import utcnow
from app.webhooks import services
from app.webhooks.jobs import queue_due_webhook_deliveries
from tests.conftest import run_flask
from tests.factories import make_acme
from tests.support.webhook_receiver import Reply

pytestmark = pytest.mark.processes


@pytest.fixture
def receiver(webhook_receiver):
    return webhook_receiver


def _delivery(app, org_id) -> WebhookDelivery:
    with app.app_context(), tenant_context(org_id):
        return db.session.scalars(select(WebhookDelivery)).one()


def test_a_worker_delivers_and_the_sweep_retries(app, committed_db, migrated_env, receiver):
    """An issue created (and committed) is delivered by a worker process, verified by the
    reference verifier; a 500 is retried by the next worker once the sweep finds it due."""
    with app.app_context():
        acme = make_acme()
        db.session.commit()
        org_id, owner_id = acme.id, acme.owner.id
    with app.app_context(), tenant_context(org_id):
        secret = services.create(receiver.url(), "", ["issue.created"]).secret
        db.session.commit()
    receiver.script(Reply(500, {}, b"try later"))
    with app.app_context(), tenant_context(org_id):
        project = db.session.scalar(select(Project).where(Project.key == "WEB"))
        issues.create_issue(project, db.session.get(User, owner_id), "Deploy failed")
        db.session.commit()

    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    [first] = receiver.wait_for(1)
    assert Webhook(secret).verify(first.body, first.headers)["data"]["issue"]["ref"] == "WEB-1"
    delivery = _delivery(app, org_id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, 500)

    with app.app_context(), tenant_context(org_id):
        row = db.session.get(WebhookDelivery, (org_id, delivery.id))
        row.next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    with app.app_context():
        assert queue_due_webhook_deliveries() == 1
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    second = receiver.wait_for(2)[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    Webhook(secret).verify(second.body, second.headers)
    assert _delivery(app, org_id).status == "succeeded"
    with app.app_context(), tenant_context(org_id):
        statuses = db.session.scalars(select(WebhookAttempt.response_status).order_by(WebhookAttempt.number))
        assert list(statuses) == [500, 200]
