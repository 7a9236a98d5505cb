"""The everyday flow in a real headless Chromium: project, issues, board, search, mention, notification."""

from __future__ import annotations

import re

import pytest

from tests.accounts import browser_login
from tests.factories import make_acme

pytestmark = pytest.mark.browser


def test_project_issues_board_search_mention_notification(page, app, live_server):
    """Create a project and issues, move one across the board, find it by a description word,
    comment with a mention, and see the notification as the mentioned person."""
    with app.app_context():
        from app.extensions import db

        make_acme({"grace@example.com": "member"}, projects=())
        db.session.commit()

    browser_login(page, live_server, "owner@example.com")
    page.get_by_role("link", name="Projects", exact=True).click()
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill("Website")
    page.get_by_label("Key", exact=True).fill("WEB")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", name="Website").wait_for()

    for title, description in (("Fix the checkout", "Customers see a flamingo error"), ("Polish footer", "")):
        page.get_by_role("link", name="New issue").click()
        page.get_by_label("Title").fill(title)
        page.get_by_label("Description").fill(description)
        page.get_by_role("button", name="Create issue").click()
        page.get_by_role("heading", name=re.compile(title)).wait_for()
        page.get_by_role("link", name="Website").click()

    page.get_by_role("link", name="Board").click()
    card = page.locator(".board-card", has_text="Fix the checkout")
    card.get_by_label(re.compile("Move WEB-1 to")).select_option("in_progress")
    card.get_by_role("button", name="Move").click()
    page.locator("#col-in_progress").wait_for()
    in_progress = page.locator(".board-column", has=page.locator("#col-in_progress"))
    in_progress.get_by_text("Fix the checkout").wait_for()

    page.get_by_role("link", name="Search").click()
    page.get_by_label("Search issues").fill("flamingo")
    page.get_by_role("button", name="Search").click()
    page.locator(".result", has_text="Fix the checkout").wait_for()
    assert page.locator(".result mark").first.inner_text().lower().startswith("flamingo")
    page.locator(".result__title").first.click()

    page.get_by_label("Comment").fill("Could you check this, @grace?")
    page.get_by_role("button", name="Comment").click()
    page.locator(".timeline__comment", has_text="Could you check this").wait_for()
    assert page.locator(".timeline__comment a.mention").inner_text() == "@grace"

    grace = page.context.browser.new_context().new_page()
    browser_login(grace, live_server, "grace@example.com")
    assert grace.locator(".bell .count").inner_text() == "1"
    grace.locator(".bell").click()
    grace.get_by_text("mentioned you in").wait_for()
    grace.get_by_role("button", name=re.compile("Fix the checkout")).click()
    grace.get_by_role("heading", name=re.compile("Fix the checkout")).wait_for()
    assert grace.locator(".bell .count").count() == 0
    assert page.problems == []
