"""The inbox in a real headless Chromium: times on hover, paging, and marking everything read."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Notification
from app.models.base import utcnow
from tests.accounts import browser_login
from tests.factories import make_acme

pytestmark = pytest.mark.browser


def test_mark_all_read_clears_the_badge(page, app, live_server):
    """Grace opens the inbox from its badge, sees when each notification came, pages on, marks all
    read, and the badge is gone."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"})
        issue = acme.add_issue("Fix the checkout")
        grace, owner = acme.people["grace@example.com"], acme.owner
        now = utcnow()
        with tenant_context(acme.id):
            db.session.add_all(
                Notification(
                    user_id=grace.id,
                    issue_id=issue.id,
                    actor_id=owner.id,
                    kind=Notification.COMMENTED,
                    excerpt=f"Comment number {i}",
                    created_at=now - timedelta(hours=3, minutes=i),
                )
                for i in range(55)
            )
            db.session.commit()

    browser_login(page, live_server, "grace@example.com")
    assert page.locator(".bell .count").inner_text() == "55"
    page.locator(".bell").click()
    page.get_by_role("heading", name="Notifications").wait_for()
    assert page.get_by_text("55 unread").is_visible()
    first = page.locator(".inbox__item").first
    assert first.locator("time").inner_text() == "3 hours ago"
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4} \d\d:\d\d UTC", first.locator("time").get_attribute("title"))
    assert page.locator(".inbox__item").count() == 50
    page.get_by_role("link", name="Older").click()
    page.get_by_text("Comment number 54").wait_for()
    assert page.locator(".inbox__item").count() == 5

    page.get_by_role("button", name="Mark all as read").click()
    page.get_by_text("You are all caught up").wait_for()
    assert page.locator(".bell .count").count() == 0
    page.get_by_role("link", name="All", exact=True).click()
    page.get_by_text("Comment number 0", exact=True).wait_for()
    assert page.locator(".inbox__item--unread").count() == 0
    assert page.problems == []
