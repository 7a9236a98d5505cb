"""Destructive actions in a real headless Chromium: each asks first, and a removal can be undone."""

from __future__ import annotations

import pytest

from tests.accounts import browser_login
from tests.factories import acme_in_browser

pytestmark = pytest.mark.browser


def test_remove_a_member_confirm_then_undo(page, app, live_server):
    """Olive removes Grace (an admin) after a page that says what happens, then undoes it: Grace
    is back, as an admin."""
    acme_in_browser(page, app, live_server, {"grace@example.com": "admin"})
    page.goto(live_server.url + "/acme/members")
    page.get_by_role("link", name="Remove Grace Hopper").click()
    page.get_by_role("heading", name="Remove Grace Hopper from Acme?").wait_for()
    assert page.get_by_text("loses access to Acme's projects, issues and reports at once").is_visible()
    page.get_by_role("link", name="Cancel").click()
    assert page.get_by_role("cell", name="Grace Hopper", exact=True).is_visible()

    page.get_by_role("link", name="Remove Grace Hopper").click()
    page.get_by_role("button", name="Remove Grace Hopper").click()
    page.get_by_text("Grace Hopper was removed from Acme.").wait_for()
    assert page.get_by_role("cell", name="Grace Hopper", exact=True).count() == 0
    page.get_by_role("button", name="Undo").click()
    page.get_by_text("The removal is undone").wait_for()
    assert page.get_by_role("combobox", name="Role of Grace Hopper").input_value() == "admin"
    assert page.get_by_role("button", name="Undo").count() == 0
    assert page.problems == []


def test_revoking_an_invitation_and_leaving_ask_first(page, app, live_server):
    """Revoke and Leave open a page that asks; Cancel changes nothing, the button does it."""
    acme_in_browser(page, app, live_server, {"grace@example.com": "member"})
    page.goto(live_server.url + "/acme/members")
    page.get_by_label("Email address").fill("newcomer@example.com")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_role("link", name="Revoke the invitation for newcomer@example.com").click()
    page.get_by_role("heading", name="Revoke the invitation for newcomer@example.com?").wait_for()
    page.get_by_role("button", name="Revoke invitation").click()
    page.get_by_text("The invitation for newcomer@example.com is revoked.").wait_for()

    page.context.clear_cookies()
    browser_login(page, live_server, "grace@example.com")
    page.goto(live_server.url + "/acme/members")
    page.get_by_role("link", name="Leave").click()
    page.get_by_role("heading", name="Leave Acme?").wait_for()
    page.get_by_role("link", name="Cancel").click()
    page.get_by_role("heading", name="Members").wait_for()
    page.get_by_role("link", name="Leave").click()
    page.get_by_role("button", name="Leave Acme").click()
    page.get_by_text("You left Acme.").wait_for()
    assert page.problems == []


def test_archiving_a_project_asks_first_and_can_be_reversed(page, app, live_server):
    """Archive opens a page saying what changes; once archived, one button makes it active again."""
    acme_in_browser(page, app, live_server)
    page.goto(live_server.url + "/acme/projects/WEB/settings")
    page.get_by_role("link", name="Archive this project").click()
    page.get_by_role("heading", name="Archive Website?").wait_for()
    assert page.get_by_text("becomes read-only").is_visible()
    page.get_by_role("link", name="Cancel").click()
    assert page.get_by_text("This project is archived").count() == 0
    page.get_by_role("link", name="Archive this project").click()
    page.get_by_role("button", name="Archive this project").click()
    page.get_by_text("Website is archived.").wait_for()
    page.get_by_role("button", name="Make active again").click()
    page.get_by_text("Website is active again.").wait_for()
    assert page.problems == []
