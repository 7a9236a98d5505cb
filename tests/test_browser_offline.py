"""The service worker in a real headless Chromium: pages a person opened are readable offline,
static files come from its cache, another session never sees them, and a change its person
made is never hidden behind an older copy."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from tests.accounts import browser_login
from tests.conftest import CHROMIUM_ARGS
from tests.factories import make_acme

pytestmark = pytest.mark.browser

ISSUE = "/acme/issues/WEB-1"
LIST = "/acme/projects/WEB/issues"


@pytest.fixture
def acme_offline(app):
    """Acme with Grace a member and one issue, WEB-1."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"})
        acme.add_issue("Checkout fails on Safari")
        db.session.commit()


def signed_in_with_the_worker(page, live_server, email: str = "grace@example.com") -> None:
    """``email`` signed in, with the service worker in control of the page."""
    browser_login(page, live_server, email)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")


def kept_pages(page) -> list[str]:
    """The paths of the pages the worker keeps, in every session's cache."""
    return page.evaluate(
        """async () => {
            const paths = [];
            for (const name of await caches.keys()) {
                if (!name.startsWith("worklane-pages-")) continue;
                const cache = await caches.open(name);
                for (const request of await cache.keys()) paths.push(new URL(request.url).pathname);
            }
            return paths.sort();
        }"""
    )


def test_a_page_opened_is_readable_offline_with_its_styles(page, app, live_server, acme_offline):
    """Offline, a page the person opened shows as it was, marked as a copy and styled; a page not
    opened says there is no copy."""
    signed_in_with_the_worker(page, live_server)
    page.goto(live_server.url + ISSUE)
    assert ISSUE in kept_pages(page)
    page.context.set_offline(True)
    page.goto(live_server.url + ISSUE)
    page.get_by_role("heading", name="Checkout fails on Safari").wait_for()
    banner = page.get_by_role("status").filter(
        has_text="You are offline: this is the page as it was just now."
    )
    assert banner.is_visible()  # app.js made the kept time relative, as every moment on a page
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4} \d\d:\d\d UTC", banner.locator("time").get_attribute("title"))
    assert banner.evaluate("element => getComputedStyle(element).fontWeight") == "600"  # app.css, kept
    page.goto(live_server.url + "/acme/projects/WEB/board")
    page.get_by_role("heading", name="You are offline").wait_for()
    assert "Checkout fails" not in page.content()
    page.context.set_offline(False)
    page.goto(live_server.url + ISSUE)
    assert page.get_by_role("status").filter(has_text="You are offline").count() == 0


def test_static_files_are_kept_by_the_worker_with_their_versions(page, app, live_server, acme_offline):
    """The versioned stylesheet and scripts a page loaded are in the worker's cache, by version."""
    signed_in_with_the_worker(page, live_server)
    page.goto(live_server.url + ISSUE)
    page.wait_for_function(
        """async () => (await (await caches.open("worklane-static-1")).keys()).length >= 3"""
    )
    kept = page.evaluate(
        """async () => (await (await caches.open("worklane-static-1")).keys()).map((request) => {
            const url = new URL(request.url);
            return [url.pathname, url.searchParams.get("v")];
        })"""
    )
    paths = {path for path, _ in kept}
    assert paths >= {"/static/css/app.css", "/static/js/app.js", "/static/vendor/htmx-2.0.8.min.js"}
    assert all(version for _, version in kept)


def test_after_logout_no_page_is_kept_for_the_next_person(page, app, live_server, acme_offline):
    """Logging out drops every page kept; the next person offline sees no copy of them."""
    signed_in_with_the_worker(page, live_server)
    page.goto(live_server.url + ISSUE)
    assert kept_pages(page)
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()
    assert kept_pages(page) == []
    page.context.set_offline(True)
    page.goto(live_server.url + ISSUE)
    page.get_by_role("heading", name="You are offline").wait_for()
    assert "Checkout fails" not in page.content()


def test_another_session_drops_the_pages_of_the_one_before(page, app, live_server, acme_offline):
    """A page of another signed-in session (Olive after Grace) leaves none of Grace's pages kept."""
    signed_in_with_the_worker(page, live_server)
    page.goto(live_server.url + LIST)
    page.context.clear_cookies()  # Grace's session is gone without a logout
    browser_login(page, live_server, "owner@example.com")
    page.goto(live_server.url + ISSUE)
    assert kept_pages(page) == ["/acme/", ISSUE]  # Olive's own, and none of Grace's
    names = page.evaluate("async () => (await caches.keys()).filter((n) => n.startsWith('worklane-pages-'))")
    assert len(names) == 1


def test_an_edit_is_never_hidden_offline_behind_an_older_copy(page, app, live_server, acme_offline):
    """After a change, offline pages show it or say there is no copy; never the page before it."""
    signed_in_with_the_worker(page, live_server)
    page.goto(live_server.url + LIST)
    page.goto(live_server.url + ISSUE)
    page.get_by_text("Edit issue").click()
    page.get_by_label("Title").fill("Checkout works again")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    page.context.set_offline(True)
    page.goto(live_server.url + ISSUE)
    page.get_by_role("heading", name="Checkout works again").wait_for()
    page.goto(live_server.url + LIST)
    page.get_by_role("heading", name="You are offline").wait_for()
    assert "Checkout fails on Safari" not in page.content()


def test_back_and_forward_restore_pages_without_loading_them(chromium_path, app, live_server, acme_offline):
    """Back and forward show the pages as they were left (the browser's back/forward cache: the
    pages may be kept, being ``no-cache``, not ``no-store``), not loaded again."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright turns the back/forward cache off by default; a person's browser has it on.
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=CHROMIUM_ARGS,
            ignore_default_args=["--disable-back-forward-cache"],
        )
        try:
            page = browser.new_context().new_page()
            signed_in_with_the_worker(page, live_server)
            page.goto(live_server.url + LIST)
            page.evaluate("window.leftHere = 'list'")
            page.goto(live_server.url + ISSUE)
            page.evaluate("window.leftHere = 'issue'")
            page.go_back(wait_until="commit")  # a page restored fires no load event
            assert page.evaluate("window.leftHere") == "list"
            page.go_forward(wait_until="commit")
            assert page.evaluate("window.leftHere") == "issue"
        finally:
            browser.close()
