"""The audit log and the session list in a real headless Chromium: an admin filters the log by
action; a person signed in twice ends the other session, which is sent to the login page."""

from __future__ import annotations

import re

import pytest

from tests.accounts import browser_login
from tests.factories import OWNER, acme_in_browser

pytestmark = pytest.mark.browser


def test_an_admin_filters_the_audit_log_by_action(page, app, live_server):
    """Grace (an admin) opens the log from the settings, picks "Signed in" and sees her sign-in."""
    acme_in_browser(page, app, live_server, {"grace@example.com": "admin"}, email="grace@example.com")
    page.goto(live_server.url + "/acme/settings")
    page.get_by_role("link", name="Audit log").click()
    page.get_by_role("heading", name="Audit log").wait_for()
    page.get_by_label("Action").select_option(label="Signed in")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*/acme/settings/audit\?.*action=auth\.signed_in.*"))
    rows = page.locator("table.audit__entries tbody tr")
    assert rows.count() == 1
    assert "Signed in" in rows.first.inner_text() and "Grace Hopper" in rows.first.inner_text()
    assert page.get_by_text("1 entry", exact=True).is_visible()
    assert page.get_by_role("combobox", name="Action").input_value() == "auth.signed_in"
    assert page.problems == []


def test_ending_the_other_session_sends_that_browser_to_the_login_page(page, app, live_server):
    """Olive, signed in in two browsers, ends the other one from her account page; it is signed out."""
    acme_in_browser(page, app, live_server)
    other_context = page.context.browser.new_context()
    other = other_context.new_page()
    other.problems = []
    other.on("pageerror", lambda exc: other.problems.append(str(exc)))
    try:
        browser_login(other, live_server, OWNER)
        page.goto(live_server.url + "/account")
        sessions = page.locator("table.account__sessions tbody tr")
        assert sessions.count() == 2
        assert "This session" in sessions.first.inner_text()
        page.get_by_role("button", name=re.compile(r"^End the session: Chrome")).click()
        page.get_by_text(re.compile(r"Session ended: Chrome")).wait_for()
        assert page.locator("table.account__sessions tbody tr").count() == 1
        other.reload()
        other.wait_for_url(re.compile(r".*/login.*"))
        assert other.get_by_role("button", name="Log in").is_visible()
        page.goto(live_server.url + "/acme/")
        assert page.url.endswith("/acme/")
        assert other.problems == []
    finally:
        other_context.close()
    assert page.problems == []
