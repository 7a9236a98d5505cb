"""Deleting an organization, or an account, in a real headless Chromium: ask, see it read-only,
cancel, ask again, and find it gone once the grace period is over."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Organization
from app.models.base import utcnow
from app.orgs import deletion
from tests.accounts import PASSWORD
from tests.factories import acme_in_browser

pytestmark = pytest.mark.browser


def _ask_to_delete(page, live_server) -> None:
    page.goto(live_server.url + "/acme/settings")
    page.get_by_role("link", name="Delete organization").click()
    page.get_by_role("heading", name="Delete Acme").wait_for()
    page.get_by_label("Organization name").fill("Acme")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete Acme").click()
    page.get_by_text("Acme will be deleted in 7 days.").wait_for()


def test_delete_cancel_delete_again_and_it_is_gone_after_the_grace_period(page, app, live_server):
    """Olive asks to delete Acme: every page says when it goes; she cancels; she asks again, the
    week passes, the job runs, and Acme is gone from her switcher and its address."""
    acme_in_browser(page, app, live_server)
    page.goto(live_server.url + "/acme/settings")
    page.get_by_role("link", name="Delete organization").click()
    page.get_by_label("Organization name").fill("acme")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete Acme").click()
    page.get_by_text("Type the organization's name exactly: Acme").wait_for()

    page.get_by_label("Organization name").fill("Acme")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete Acme").click()
    page.get_by_text("Acme will be deleted in 7 days.").wait_for()
    page.goto(live_server.url + "/acme/issues")
    assert page.get_by_text(
        re.compile(r"Acme is to be deleted on .* and is read-only until then")
    ).is_visible()
    page.get_by_role("link", name="Cancel the deletion").click()
    page.get_by_role("button", name="Cancel the deletion").click()
    page.get_by_text("The deletion of Acme is cancelled.").wait_for()
    page.goto(live_server.url + "/acme/issues")
    assert page.get_by_text("is to be deleted").count() == 0

    _ask_to_delete(page, live_server)
    with app.app_context(), unscoped("test: a week passes"):
        db.session.execute(
            update(Organization)
            .where(Organization.slug == "acme")
            .values(deletion_due_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
    with app.app_context():  # the job runs as the scheduler runs it: scoped
        assert deletion.delete_due_organizations() == 1
        assert db.session.scalar(select(Organization.id).where(Organization.slug == "acme")) is None
    response = page.goto(live_server.url + "/acme/issues")
    assert response.status == 404
    page.goto(live_server.url + "/orgs/new")
    page.get_by_label("Organization name").fill("Acme again")
    page.get_by_label("Address").fill("acme")
    page.get_by_role("button", name=re.compile("Create")).click()
    page.get_by_text("That address belonged to a deleted organization").wait_for()
    # The refused forms (422) and the deleted organization's address (404) are answered as such.
    expected = ("status of 422", "status of 404")
    assert [p for p in page.problems if not any(code in p for code in expected)] == []


def test_a_person_asks_to_delete_their_account_and_keeps_it(page, app, live_server):
    """Grace asks to delete her account with her password, reads when it goes, and keeps it."""
    acme_in_browser(page, app, live_server, {"grace@example.com": "member"}, email="grace@example.com")
    page.goto(live_server.url + "/account")
    page.get_by_role("link", name="Delete account").click()
    page.get_by_role("heading", name="Delete your account").wait_for()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    page.get_by_text("Your account will be deleted in 7 days.").wait_for()
    assert page.get_by_text(re.compile(r"Your account is to be deleted on ")).is_visible()
    page.get_by_role("button", name="Keep my account").click()
    page.get_by_text("Your account is kept: its deletion is cancelled.").wait_for()
    assert page.get_by_role("link", name="Delete account").is_visible()
    assert page.problems == []
