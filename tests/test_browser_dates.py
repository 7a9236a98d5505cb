"""Dates and times in a real headless Chromium: relative text, the exact time in the person's zone
on hover, the zone from the account page or the browser, and due dates kept within bounds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.core.dates import format_datetime, iso_utc
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Issue, User
from tests.accounts import PASSWORD, browser_login
from tests.factories import OWNER, make_acme

pytestmark = pytest.mark.browser

GRACE = "grace@example.com"


def _acme_with_an_issue(app, at: datetime, zones: dict[str, str] | None = None) -> datetime:
    """Acme (Olive, and Grace as a member) with WEB-1 created and last changed at ``at``."""
    with app.app_context():
        acme = make_acme({GRACE: "member"})
        issue = acme.add_issue("Broken login")
        with tenant_context(acme.id):
            issue.created_at = issue.updated_at = at
            db.session.flush()
        for user in db.session.scalars(select(User).where(User.email.in_(zones or {}))):
            user.time_zone = zones[user.email]
        db.session.commit()
    return at


def _created(page, at: datetime):
    return page.locator(f'.details time[datetime="{iso_utc(at)}"]')


def test_the_account_pages_time_zone_shows_on_hover(page, app, live_server):
    """Finding and choosing Asia/Tokyo on the account page: the issue page's times read relative,
    and their exact time on hover is Tokyo's (the browser itself is in another zone)."""
    at = _acme_with_an_issue(app, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3))
    browser_login(page, live_server, OWNER)
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") != "Asia/Tokyo"
    page.goto(live_server.url + "/account")
    page.get_by_role("searchbox", name="Filter time zones").fill("tokyo")
    shown = "(select) => [...select.options].filter((option) => !option.hidden).map((option) => option.value)"
    assert page.get_by_role("combobox", name="Time zone").evaluate(shown) == ["Asia/Tokyo", "UTC"]
    page.get_by_role("combobox", name="Time zone").select_option("Asia/Tokyo")
    page.get_by_role("button", name="Save time zone").click()
    page.get_by_text("Times are now shown in Asia/Tokyo.").wait_for()
    assert page.get_by_role("combobox", name="Time zone").input_value() == "Asia/Tokyo"
    page.goto(live_server.url + "/acme/issues/WEB-1")
    created = _created(page, at)
    created.hover()
    assert created.inner_text() == "3 hours ago"
    assert created.get_attribute("title") == format_datetime(at, "Asia/Tokyo")
    assert created.get_attribute("title").endswith(" Asia/Tokyo")
    assert page.problems == []


def test_times_read_relative_on_a_list_and_an_issue_page(page, app, live_server):
    """The list's "Updated" column and the issue page say "yesterday"; a time swapped in by htmx
    is made relative too, and the text moves on as time passes."""
    at = _acme_with_an_issue(app, datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + "/acme/issues")
    row_time = page.locator(f'tr time[datetime="{iso_utc(at)}"]')
    assert row_time.inner_text() == "yesterday"
    assert row_time.get_attribute("title") == format_datetime(at, "UTC")
    page.clock.install()
    page.goto(live_server.url + "/acme/issues/WEB-1")
    assert _created(page, at).inner_text() == "yesterday"
    swapped = iso_utc(datetime.now(UTC) - timedelta(minutes=5))
    page.evaluate(
        """(iso) => htmx.swap("#main", `<p id="swapped"><time datetime="${iso}" data-relative>x</time></p>`,
                              {swapStyle: "beforeend"})""",
        swapped,
    )
    page.clock.run_for(1000)
    expect(page.locator("#swapped time")).to_have_text("5 minutes ago")
    page.clock.fast_forward("01:00:00")
    expect(page.locator("#swapped time")).to_have_text("1 hour ago")
    assert page.problems == []


def test_two_people_in_different_zones_each_see_their_own(page, app, live_server):
    """The issue page is shared (cached per organization) yet each person's hover shows their zone."""
    zones = {OWNER: "Asia/Tokyo", GRACE: "America/New_York"}
    at = _acme_with_an_issue(app, datetime(2026, 3, 5, 23, 7, tzinfo=UTC), zones)
    other = page.context.browser.new_context()
    try:
        grace = other.new_page()
        for person, email in ((page, OWNER), (grace, GRACE)):
            browser_login(person, live_server, email)
            person.goto(live_server.url + "/acme/issues/WEB-1")
            assert _created(person, at).get_attribute("title") == format_datetime(at, zones[email])
        assert _created(page, at).get_attribute("title") == "6 Mar 2026 08:07 Asia/Tokyo"
        assert _created(grace, at).get_attribute("title") == "5 Mar 2026 18:07 America/New_York"
    finally:
        other.close()
    assert page.problems == []


def test_sign_up_stores_the_browsers_time_zone(page, app, live_server):
    """Signing up in a browser set to Asia/Tokyo makes the account's zone Asia/Tokyo."""
    tokyo = page.context.browser.new_context(timezone_id="Asia/Tokyo")
    try:
        visitor = tokyo.new_page()
        visitor.goto(live_server.url + "/signup")
        visitor.get_by_label("Your name").fill("Tomo Tokyo")
        visitor.get_by_label("Work email").fill("tomo@example.com")
        visitor.get_by_label("Password").fill(PASSWORD)
        visitor.get_by_label("Organization name").fill("Tokyo Co")
        visitor.get_by_role("button", name="Create account").click()
        visitor.wait_for_url(re.compile(r".*/signup/check-email$"))
    finally:
        tokyo.close()
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == "tomo@example.com")).one()
        assert user.time_zone == "Asia/Tokyo"


def test_a_due_date_out_of_bounds_gives_the_forms_message(page, app, live_server):
    """Typing 0001-01-01 as a due date, on the new issue form and the edit form, is refused with
    the range in a message on the field; nothing is stored."""
    _acme_with_an_issue(app, datetime.now(UTC))
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + "/acme/projects/WEB/issues/new")
    page.get_by_label("Title").fill("Far away")
    page.get_by_label("Due date").fill("0001-01-01")
    page.get_by_role("button", name="Create issue").click()
    page.get_by_text("Choose a due date between 1900 and 2999.").wait_for()
    page.goto(live_server.url + "/acme/issues/WEB-1")
    page.get_by_text("Edit issue").click()
    page.locator("details.edit").get_by_label("Due date").fill("9999-12-31")  # the edit form of all fields
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Choose a due date between 1900 and 2999.").wait_for()
    with app.app_context(), unscoped("test: every issue, to see nothing was stored"):
        assert db.session.execute(select(Issue.title, Issue.due_date)).all() == [("Broken login", None)]
    assert [p for p in page.problems if "422" not in p] == []


def test_relative_times_in_words(page, app, live_server):
    """Relative times read as people say them, from seconds to years, past and future."""
    page.goto(live_server.url + "/login")
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    said = {
        timedelta(seconds=10): "just now",
        timedelta(minutes=1): "1 minute ago",
        timedelta(minutes=42): "42 minutes ago",
        timedelta(hours=1): "1 hour ago",
        timedelta(hours=23): "23 hours ago",
        timedelta(days=1): "yesterday",
        timedelta(days=6): "6 days ago",
        timedelta(days=61): "2 months ago",
        timedelta(days=800): "2 years ago",
        timedelta(seconds=-30): "just now",
        timedelta(days=-1): "tomorrow",
        timedelta(days=-6): "in 6 days",
    }
    words = page.evaluate(
        "([now, moments]) => moments.map((m) => relativeTime(new Date(m), new Date(now)))",
        [iso_utc(now), [iso_utc(now - gap) for gap in said]],
    )
    assert dict(zip(said, words, strict=True)) == said
