"""Webhooks roll out by the ``webhooks`` feature flag: an organization the rollout has not reached
has no webhook pages and its endpoints are sent nothing; once the percentage passes its place it
has both, and stays in as the percentage grows."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.flags.state import bucket
from app.issues import services as issues
from app.models import Project, User, WebhookMessage
from app.webhooks import services as webhooks
from tests.accounts import login, make_user, post_form
from tests.factories import OWNER, make_acme

FORM, ACTION = "/operators/flags", "/operators/flags/webhooks"


@pytest.fixture
def acme(app, db_session):
    """Acme with an endpoint that wants issue.created."""
    with app.app_context():
        team = make_acme()
        with tenant_context(team.id):
            webhooks.create("http://127.0.0.1:9/hook", "Deploy bot", ["issue.created"])
            db.session.flush()
        org_id = team.id
        db.session.commit()
    return org_id


@pytest.fixture
def operator(app, db_session, monkeypatch):
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({"ops@example.com"}))
    make_user("ops@example.com", name="Ops")
    db.session.commit()
    client = app.test_client()
    login(client, "ops@example.com")
    return client


def _roll_out(operator, percentage: int) -> None:
    answer = post_form(
        operator, FORM, ACTION, **{"webhooks-mode": "percentage", "webhooks-percentage": percentage}
    )
    assert answer.status_code == 303


def _messages_after_an_issue(app, org_id) -> int:
    with app.app_context(), tenant_context(org_id):
        project = db.session.scalar(select(Project))
        owner = db.session.scalar(select(User).where(User.email == OWNER))
        issues.create_issue(project, owner, "Rolled out?")
        db.session.commit()
    with app.app_context(), tenant_context(org_id):
        return db.session.scalar(select(func.count()).select_from(WebhookMessage))


def test_webhooks_follow_the_rollout(app, client, acme, operator):
    """Below Acme's place: no link, 404 pages, no message for a new issue; above it: the link, the
    page, a message; raised further, still in."""
    login(client, OWNER)
    place = bucket("webhooks", acme) // 100
    _roll_out(operator, place)
    assert 'href="/acme/settings/webhooks"' not in client.get("/acme/settings").text
    assert client.get("/acme/settings/webhooks").status_code == 404
    assert _messages_after_an_issue(app, acme) == 0
    _roll_out(operator, place + 1)
    assert 'href="/acme/settings/webhooks"' in client.get("/acme/settings").text
    assert client.get("/acme/settings/webhooks").status_code == 200
    assert _messages_after_an_issue(app, acme) == 1
    _roll_out(operator, min(100, place + 10))
    assert client.get("/acme/settings/webhooks").status_code == 200
