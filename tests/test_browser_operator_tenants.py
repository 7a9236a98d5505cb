"""The operators' tenant console in a real headless Chromium: find an organization, suspend it,
and its member sees the page saying so."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.accounts import PASSWORD, make_user
from tests.factories import make_acme

pytestmark = pytest.mark.browser


def test_an_operator_suspends_an_organization_and_its_member_sees_why_not(
    page, app, live_server, monkeypatch
):
    """Otto finds Acme, suspends it with a reason; Grace then gets the suspended page; Otto opens it again."""
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({"ops@example.com"}))
    with app.app_context():
        make_user("ops@example.com", name="Otto Operator")
        make_acme({"grace@example.com": "member"})
        db.session.commit()
    _sign_in(page, live_server, "ops@example.com")
    page.goto(live_server.url + "/operators/")
    page.get_by_role("link", name="Organizations").click()
    page.get_by_label("Name or address").fill("acm")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Suspend Acme").click()
    page.get_by_role("button", name="Suspend Acme").click()
    page.get_by_text("Say why: the owners are told.").wait_for()
    page.get_by_label("Reason").fill("Abuse report 1234")
    page.get_by_role("button", name="Suspend Acme").click()
    page.get_by_text("Acme is suspended; its owners are told why.").wait_for()
    assert page.get_by_text("Abuse report 1234").is_visible()

    page.context.clear_cookies()
    _sign_in(page, live_server, "grace@example.com")
    response = page.goto(live_server.url + "/acme/issues")
    assert response.status == 403
    assert page.get_by_text("Acme is suspended by the operators of this service").is_visible()

    page.context.clear_cookies()
    _sign_in(page, live_server, "ops@example.com")
    page.goto(live_server.url + "/operators/organizations?q=acme")
    page.get_by_role("link", name="Open Acme again").click()
    page.get_by_role("button", name="Open it again").click()
    page.get_by_text("Acme is open again.").wait_for()
    expected = ("status of 422", "status of 403")
    assert [p for p in page.problems if not any(code in p for code in expected)] == []


def _sign_in(page, live_server, email: str) -> None:
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: not url.endswith("/login"))


def test_an_operator_signs_in_as_a_member_and_the_audit_log_shows_it(page, app, live_server, monkeypatch):
    """Otto signs in as Grace with a reason, sees the banner on every page, comments, ends it;
    Olive then finds the start and the comment in Acme's audit log, as Otto's."""
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({"ops@example.com"}))
    with app.app_context():
        make_user("ops@example.com", name="Otto Operator")
        acme = make_acme({"grace@example.com": "member"})
        acme.add_issue("Broken login")
        db.session.commit()
    _sign_in(page, live_server, "ops@example.com")
    page.goto(live_server.url + "/operators/people")
    page.get_by_label("Email or name (3 characters or more)").fill("grace")
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name="Sign in as Grace Hopper").click()
    page.get_by_label("Reason").fill("Ticket 4711: her board looks empty")
    page.get_by_role("button", name="Sign in as Grace Hopper").click()
    banner = page.get_by_role("alert").filter(has_text="You are signed in as Grace Hopper")
    banner.wait_for()
    page.goto(live_server.url + "/acme/issues/WEB-1")
    assert banner.is_visible()
    page.get_by_label("Comment").fill("Checked by support")
    page.get_by_role("button", name="Comment").click()
    page.get_by_text("Checked by support").wait_for()
    banner.get_by_role("button", name="End").click()
    page.get_by_text("You are no longer signed in as someone else.").wait_for()

    _sign_in(page, live_server, "owner@example.com")
    page.goto(live_server.url + "/acme/settings/audit")
    page.get_by_label("Action").select_option(label="Operator signed in as a member")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit__entries tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1
    assert "Otto Operator" in rows.first.inner_text() and "Ticket 4711" in rows.first.inner_text()
    page.get_by_label("Action").select_option(label="Change made by an operator as a member")
    page.get_by_role("button", name="Filter").click()
    page.get_by_text("/acme/issues/WEB-1/comments").wait_for()
    assert page.problems == []
