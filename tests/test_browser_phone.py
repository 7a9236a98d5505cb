"""Worklane on a phone (390 by 844) in a real headless Chromium: no page wider than the screen,
titles in lists, the navigation in a menu, a board that scrolls inside itself."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.accounts import browser_login
from tests.factories import OWNER, acme_in_browser, make_acme

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LONG_TITLE = "Checkout forgets the shipping address when the card is declined twice"


@pytest.fixture
def phone(page, app, live_server):
    """Olive signed in on a phone, in Acme with a few issues on the WEB board."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"})
        acme.add_issue(LONG_TITLE, state="in_progress")
        for n in range(4):
            acme.add_issue(f"Issue number {n}", state=("todo", "done", "cancelled", "in_review")[n])
        db.session.commit()
    page.set_viewport_size(PHONE)
    browser_login(page, live_server, OWNER)
    return page


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def within_screen(locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5


@pytest.mark.parametrize(
    "path",
    [
        "/acme/",
        "/acme/projects/",
        "/acme/projects/WEB/issues",
        "/acme/projects/WEB/board",
        "/acme/issues/WEB-1",
        "/acme/notifications",
        "/acme/reports",
        "/acme/members",
        "/acme/settings",
        "/acme/search?q=checkout",
        "/account",
    ],
)
def test_no_page_is_wider_than_the_phone(phone, live_server, path):
    """Each page fits the phone's width: nothing to scroll sideways but what scrolls inside itself."""
    phone.goto(live_server.url + path)
    assert phone.locator("main h1").first.is_visible()
    assert page_width(phone) <= PHONE["width"]
    assert phone.problems == []


def test_issue_titles_are_shown_in_lists_on_a_phone(phone, live_server, tmp_path):
    """The list shows each issue's title, whole and on the screen (it was the column hidden)."""
    phone.goto(live_server.url + "/acme/projects/WEB/issues")
    title = phone.get_by_role("link", name=LONG_TITLE)
    assert title.is_visible() and within_screen(title)
    phone.screenshot(path=str(tmp_path / "list-390.png"), full_page=True)
    phone.goto(live_server.url + "/acme/my-work")
    assert phone.locator("main h1").first.is_visible()
    assert page_width(phone) <= PHONE["width"]


def test_the_navigation_folds_into_a_menu(phone, live_server):
    """On a phone the links sit behind a Menu button that opens and closes them."""
    phone.goto(live_server.url + "/acme/projects/WEB/issues")
    menu = phone.get_by_role("button", name="Menu")
    reports = phone.get_by_role("navigation", name="Main").get_by_role("link", name="Reports")
    assert menu.is_visible() and menu.get_attribute("aria-expanded") == "false"
    assert not reports.is_visible()
    menu.click()
    assert menu.get_attribute("aria-expanded") == "true"
    assert reports.is_visible() and within_screen(reports)
    phone.keyboard.press("Escape")
    assert not reports.is_visible() and menu.get_attribute("aria-expanded") == "false"
    menu.click()
    reports.click()
    phone.get_by_role("heading", name="Reports").first.wait_for()
    assert phone.problems == []


def test_the_navigation_is_open_on_a_wide_screen(page, app, live_server):
    """On a laptop the links are in the bar and no Menu button is shown."""
    acme_in_browser(page, app, live_server)
    page.goto(live_server.url + "/acme/")
    assert not page.get_by_role("button", name="Menu").is_visible()
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").is_visible()


def test_the_board_scrolls_inside_itself_on_a_phone(phone, live_server):
    """Every column of the board can be reached by scrolling the board, not the page, and a card
    can still be moved."""
    phone.goto(live_server.url + "/acme/projects/WEB/board")
    board = phone.locator(".board")
    assert page_width(phone) <= PHONE["width"]
    assert board.evaluate("b => b.scrollWidth > b.clientWidth")
    cancelled = phone.get_by_role("region", name="Cancelled")
    cancelled.scroll_into_view_if_needed()
    assert within_screen(cancelled.get_by_role("heading", name="Cancelled"))
    assert page_width(phone) <= PHONE["width"]
    card = phone.locator(".board-card", has_text=LONG_TITLE)
    card.scroll_into_view_if_needed()
    assert within_screen(card.get_by_role("link", name=LONG_TITLE))
    card.get_by_label("Move WEB-1 to").select_option(label="In review")
    card.get_by_role("button", name="Move").click()
    phone.get_by_role("region", name="In review").get_by_role("link", name=LONG_TITLE).wait_for()
    assert phone.problems == []
