"""The Markdown preview in a real headless Chromium: a description and a comment shown as their
page will show them, before anything is saved."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.accounts import browser_login
from tests.factories import make_acme

pytestmark = pytest.mark.browser


def test_a_description_and_a_comment_preview_before_they_are_saved(page, app, live_server):
    """Grace previews a new issue's description and a comment: bold, a list and a mention show as
    they will, and nothing is saved until she submits."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"})
        acme.add_issue("Checkout fails on Safari")
        db.session.commit()
    browser_login(page, live_server, "grace@example.com")

    page.goto(live_server.url + "/acme/projects/WEB/issues/new")
    page.get_by_label("Description").fill("**Steps** for @grace:\n\n- pay\n- boom")
    page.get_by_role("button", name="Preview").click()
    output = page.locator(".preview__output")
    output.get_by_text("Steps").wait_for()
    assert output.locator("strong").inner_text() == "Steps"
    assert output.get_by_role("link", name="@grace").is_visible()
    assert output.locator("li").all_inner_texts() == ["pay", "boom"]

    page.goto(live_server.url + "/acme/issues/WEB-1")
    page.get_by_label("Comment").fill("Seen on *iOS* too")
    comment_form = page.locator("form", has=page.get_by_label("Comment"))
    comment_form.get_by_role("button", name="Preview").click()
    comment_form.locator(".preview__output em").get_by_text("iOS").wait_for()
    assert (
        page.get_by_text("Seen on iOS too").count() == 0
        or "Seen on" not in page.locator(".timeline").inner_text()
    )
    assert page.problems == [], "\n".join(page.problems)
