"""Webhooks in a real headless Chromium: an owner adds an endpoint, copies its secret, sends a
test event and follows its delivery in the log down to the attempt."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Organization, WebhookDelivery
from app.webhooks.jobs import deliver_webhook
from tests.factories import acme_in_browser

pytestmark = pytest.mark.browser


@pytest.fixture
def receiver(webhook_receiver):
    return webhook_receiver


def test_an_owner_adds_an_endpoint_sends_a_test_event_and_sees_it_delivered(page, app, live_server, receiver):
    """From the organization's settings: add an endpoint (URL and an event), see the secret once,
    send a test event, see it in the log once a worker delivered it, open its attempt; the
    receiver verifies it with the secret the page showed."""
    acme_in_browser(page, app, live_server)
    page.goto(live_server.url + "/acme/settings")
    page.get_by_role("link", name="Webhooks", exact=True).click()
    page.get_by_role("heading", name="Webhooks", exact=True).wait_for()
    assert page.get_by_text("No endpoints yet.").is_visible()

    page.get_by_label("Endpoint URL").fill(receiver.url())
    page.get_by_label("Description").fill("Deploy bot")
    page.get_by_label("issue.created").check()
    page.get_by_role("button", name="Add endpoint").click()
    page.get_by_text("Endpoint added.").wait_for()
    secret = page.get_by_test_id("webhook-secret").inner_text()
    assert secret.startswith("whsec_")
    assert page.get_by_label("issue.created").is_checked()
    assert not page.get_by_label("comment.created").is_checked()

    page.get_by_role("button", name="Send test event").click()
    page.get_by_text("Test event queued").wait_for()
    assert page.get_by_test_id("webhook-secret").count() == 0  # shown once only
    assert page.get_by_role("cell", name="webhook.test", exact=True).is_visible()

    with app.app_context():
        org_id = db.session.scalar(select(Organization.id).where(Organization.slug == "acme"))
    with app.app_context(), tenant_context(org_id):  # the worker's part, in this process
        delivery_id = db.session.scalar(select(WebhookDelivery.id))
        assert deliver_webhook(str(delivery_id)) == "succeeded"
    [request] = receiver.wait_for(1)
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "webhook.test"

    page.reload()
    assert page.get_by_role("row").filter(has_text="webhook.test").get_by_text("Succeeded").is_visible()
    page.get_by_role("link", name="webhook.test").click()
    page.get_by_role("heading", name="webhook.test delivery").wait_for()
    assert page.get_by_text("Answered 200").is_visible()
    assert page.get_by_text(request.headers["webhook-id"]).first.is_visible()
    assert page.problems == []
