"""The issue lists in a real headless Chromium: filters as chips that update the list at once
(the address following), the count, pages both ways, and the saved views' screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.extensions import db
from tests.accounts import browser_login
from tests.factories import OWNER, make_acme

pytestmark = pytest.mark.browser


def _refs(page) -> set[str]:
    return set(page.locator("#issue-list a.ref").all_inner_texts())


def _count(page, text: str) -> None:
    expect(page.locator("#issue-count")).to_have_text(text)


def _signed_in_as(page, live_server, email: str, path: str) -> None:
    """Sign out, sign in as ``email`` and open ``path``."""
    page.context.clear_cookies()
    browser_login(page, live_server, email)
    page.goto(live_server.url + path)


def test_chips_filter_the_list_without_a_reload_and_the_address_reloads_it(page, app, live_server):
    """Two states, then a label: chips appear, the list and its count follow without a reload
    and the address names the filters; reloading it gives the same list; removing a chip widens it."""
    with app.app_context():
        acme = make_acme(projects=("WEB", "API"), labels=("bug", "ui"))
        bug = acme.labels["bug"].id
        acme.add_issue("Login fails", state="todo", label_ids=[bug])
        acme.add_issue("Slow search", state="in_progress", project="API", label_ids=[bug])
        acme.add_issue("Footer colour", state="in_progress")
        acme.add_issue("Old crash", state="done", label_ids=[bug])
        acme.add_issue("Write docs", state="backlog")
        db.session.commit()
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + "/acme/issues")
    _count(page, "5 issues")
    assert not page.get_by_role("button", name="Apply").is_visible()  # the script updates the list
    page.evaluate("window.sameDocument = true")

    page.get_by_label("State", exact=True).select_option(label="Todo")
    page.get_by_role("button", name="Remove filter State: Todo").wait_for()
    _count(page, "1 issue")
    page.get_by_label("State", exact=True).select_option(label="In progress")
    page.get_by_role("button", name="Remove filter State: In progress").wait_for()
    _count(page, "3 issues")
    page.get_by_label("Label", exact=True).select_option(label="bug")
    page.get_by_role("button", name="Remove filter Label: bug").wait_for()
    _count(page, "2 issues")
    assert _refs(page) == {"WEB-1", "API-1"}
    assert page.evaluate("window.sameDocument") is True  # no page load happened
    expect(page).to_have_url(re.compile(rf".*/acme/issues\?state=todo&state=in_progress&label={bug}$"))

    page.reload()
    _count(page, "2 issues")
    assert _refs(page) == {"WEB-1", "API-1"}
    assert page.get_by_role("button", name="Remove filter State: Todo").is_visible()

    page.evaluate("window.sameDocument = true")
    page.get_by_role("button", name="Remove filter State: Todo").click()
    _count(page, "1 issue")
    assert _refs(page) == {"API-1"}
    assert page.get_by_role("button", name="Remove filter State: Todo").count() == 0
    expect(page).to_have_url(re.compile(rf".*/acme/issues\?state=in_progress&label={bug}$"))
    page.get_by_label("Project", exact=True).select_option(label="WEB · Website")
    _count(page, "0 issues")
    assert page.evaluate("window.sameDocument") is True
    assert page.problems == []


def test_next_and_previous_pages(page, app, live_server):
    """60 issues: the first page shows 50, Next page the other 10 (the count stays 60), Previous
    page the first 50 again; each page's address reloads it."""
    with app.app_context():
        acme = make_acme()
        for n in range(60):
            acme.add_issue(f"Issue number {n + 1}")
        db.session.commit()
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + "/acme/projects/WEB/issues?sort=number")
    _count(page, "60 issues")
    first = _refs(page)
    assert len(first) == 50 and "WEB-1" in first
    assert page.get_by_role("link", name="Previous page").count() == 0

    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r".*sort=number&after=.+"))
    page.get_by_role("link", name="Previous page").wait_for()
    assert _refs(page) == {f"WEB-{n}" for n in range(51, 61)}
    _count(page, "60 issues")
    assert page.get_by_role("link", name="Next page").count() == 0
    page.reload()
    assert _refs(page) == {f"WEB-{n}" for n in range(51, 61)}

    page.get_by_role("link", name="Previous page").click()
    expect(page).to_have_url(re.compile(r".*sort=number&before=.+"))
    page.get_by_role("link", name="Next page").wait_for()
    assert _refs(page) == first
    assert page.get_by_role("link", name="Previous page").count() == 0
    assert page.problems == []


def test_a_saved_view_renamed_shared_and_deleted(page, app, live_server):
    """Olive saves a view, renames it and shares it; Grace (a member) sees it on her list and on
    the views screen without controls; Olive deletes it after the confirmation page."""
    with app.app_context():
        make_acme({"grace@example.com": "member"})
        db.session.commit()
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + "/acme/issues")
    page.get_by_label("State", exact=True).select_option(label="Todo")
    page.get_by_role("button", name="Remove filter State: Todo").wait_for()
    page.get_by_text("Save these filters as a view").click()
    page.get_by_label("View name").fill("Todo")
    page.get_by_role("button", name="Save view").click()
    page.get_by_text("Saved the view “Todo”.").wait_for()

    page.get_by_role("link", name="Manage saved views").click()
    view = page.get_by_role("region", name="Todo")
    assert view.get_by_text("Personal: only you see it").is_visible()
    view.get_by_label("Name", exact=True).fill("Team todo")
    view.get_by_label("Who sees it").select_option(label="Everyone in Acme")
    view.get_by_role("button", name="Save Todo").click()
    page.get_by_text("Saved the view “Team todo”.").wait_for()
    assert (
        page.get_by_role("region", name="Team todo").get_by_text("Shared with the organization").is_visible()
    )

    _signed_in_as(page, live_server, "grace@example.com", "/acme/issues")
    page.get_by_role("link", name="Team todo").click()
    page.get_by_role("button", name="Remove filter State: Todo").wait_for()
    page.goto(live_server.url + "/acme/views")
    shared = page.get_by_role("region", name="Team todo")
    assert shared.get_by_text("saved by Olive Owner").is_visible()
    assert (
        shared.get_by_role("button").count() == 0
        and shared.get_by_role("link", name=re.compile("Delete")).count() == 0
    )

    _signed_in_as(page, live_server, OWNER, "/acme/views")
    page.get_by_role("link", name="Delete Team todo…").click()
    page.get_by_role("heading", name="Delete the view “Team todo”?").wait_for()
    page.get_by_role("link", name="Cancel").click()
    views = page.get_by_role("region", name="Team todo")
    assert views.get_by_role("textbox", name="Name").input_value() == "Team todo"  # Cancel kept it
    views.get_by_role("link", name="Delete Team todo…").click()
    page.get_by_role("button", name="Delete view").click()
    page.get_by_text("View “Team todo” deleted.").wait_for()
    assert page.get_by_role("region", name="Team todo").count() == 0
    assert page.problems == []


def test_the_keyboard_stays_in_the_filters_and_the_new_count_is_said(page, app, live_server):
    """Removing a chip from the keyboard leaves the focus on the chosen filters (on the count after
    the last), a filter chosen keeps its field focused, and the status region says the new count."""
    with app.app_context():
        acme = make_acme(labels=("bug",))
        acme.add_issue("Login fails", state="todo", label_ids=[acme.labels["bug"].id])
        acme.add_issue("Footer colour", state="in_progress")
        acme.add_issue("Old crash", state="done")
        db.session.commit()
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + "/acme/issues?state=todo&state=in_progress")
    status = page.get_by_role("status").filter(has_text=re.compile(r"^\d+ issues?$"))

    state = page.get_by_label("State", exact=True)
    state.focus()
    state.select_option(label="Done")
    page.get_by_role("button", name="Remove filter State: Done").wait_for()
    expect(status).to_have_text("3 issues")
    expect(page.get_by_label("State", exact=True)).to_be_focused()

    chosen = page.get_by_role("list", name="Chosen filters")
    page.get_by_role("button", name="Remove filter State: Todo").focus()
    page.keyboard.press("Enter")
    expect(status).to_have_text("2 issues")
    expect(chosen).to_be_focused()
    page.keyboard.press("Tab")  # the next chip's button
    expect(page.get_by_role("button", name="Remove filter State: In progress")).to_be_focused()
    page.keyboard.press("Enter")
    expect(status).to_have_text("1 issue")
    page.get_by_role("button", name="Remove filter State: Done").focus()
    page.keyboard.press("Enter")
    expect(status).to_have_text("3 issues")
    expect(page.locator("#issue-count")).to_be_focused()
    assert page.problems == [], "\n".join(page.problems)
