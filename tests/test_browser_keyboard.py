"""The keyboard in a real headless Chromium: the shortcuts of an organization's pages and the
command palette (Ctrl-K), driven by app/static/js/app.js."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.extensions import db
from tests.accounts import browser_login
from tests.factories import OWNER, make_acme

pytestmark = pytest.mark.browser


@pytest.fixture
def acme_page(page, app, live_server):
    """Olive signed in to Acme, whose WEB project has three issues and API one."""
    with app.app_context():
        acme = make_acme(projects=("WEB", "API"))
        for title in ("Kestrel feeds the chicks", "Osprey builds a nest", "Heron waits by the pond"):
            acme.add_issue(title)
        acme.add_issue("Puffin carries sand eels", project="API")
        db.session.commit()
    browser_login(page, live_server, OWNER)
    return page


def _press_on(page, url: str, key: str, lands_on: str) -> None:
    """Press ``key`` on the page at ``url``; returns once the browser is at ``lands_on`` (a path)."""
    page.goto(url)
    page.keyboard.press(key)
    page.wait_for_url("**" + lands_on)


def test_c_opens_the_new_issue_form_with_the_title_focused(acme_page, live_server):
    """On a project's list, "c" opens its new-issue form with the title focused: type, Enter, created."""
    page = acme_page
    _press_on(page, live_server.url + "/acme/projects/API/issues", "c", "/acme/projects/API/issues/new")
    expect(page.get_by_label("Title")).to_be_focused()
    page.keyboard.type("Gannet dives for fish")
    page.keyboard.press("Enter")
    page.wait_for_url("**/acme/issues/API-2")
    assert page.get_by_role("heading", name="Gannet dives for fish").is_visible()
    assert page.problems == []


def test_c_outside_a_project_offers_the_projects(acme_page, live_server):
    """On My work, "c" asks which project the new issue belongs to; on an issue's page, it is the
    issue's project."""
    page = acme_page
    _press_on(page, live_server.url + "/acme/my-work", "c", "/acme/new-issue")
    page.get_by_role("link", name="New issue in Public API").click()
    page.wait_for_url("**/acme/projects/API/issues/new")
    _press_on(page, live_server.url + "/acme/issues/API-1", "c", "/acme/projects/API/issues/new")
    assert page.problems == []


def test_c_typed_in_a_field_stays_in_the_field(acme_page, live_server):
    """Typing "c" (or "j", "/", "?") in a text field types it: the page stays and nothing opens."""
    page = acme_page
    page.goto(live_server.url + "/acme/projects/WEB/issues")
    field = page.get_by_label("Text")
    field.click()
    page.keyboard.type("cj/?c")
    assert field.input_value() == "cj/?c"
    assert page.url.endswith("/acme/projects/WEB/issues")
    assert not page.get_by_role("dialog").is_visible()
    page.locator("main h1").click()  # out of the field, the same keys are shortcuts again
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    assert page.problems == []


def test_slash_focuses_search(acme_page, live_server):
    """ "/" goes to the search page with its box focused, or focuses the page's own search field."""
    page = acme_page
    _press_on(page, live_server.url + "/acme/my-work", "/", "/acme/search")
    expect(page.get_by_label("Search issues")).to_be_focused()
    page.keyboard.type("osprey")
    page.get_by_role("link", name="WEB-2 Osprey builds a nest").wait_for()
    page.goto(live_server.url + "/acme/projects/WEB/issues")
    page.keyboard.press("/")
    expect(page.get_by_label("Text")).to_be_focused()
    assert page.get_by_label("Text").input_value() == ""
    assert page.problems == []


def test_j_and_k_move_through_a_list_and_enter_opens_the_issue(acme_page, live_server):
    """j selects the first row, j j j k the second (visibly, one row at a time); Enter opens it."""
    page = acme_page
    page.goto(live_server.url + "/acme/projects/WEB/issues?sort=number")
    rows = page.locator("table.table--list tbody tr")
    refs = [rows.nth(n).locator("a.ref").inner_text() for n in range(3)]
    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bis-selected\b"))
    for key in "jjk":
        page.keyboard.press(key)
    expect(rows.nth(1)).to_have_class(re.compile(r"\bis-selected\b"))
    assert page.locator("tr.is-selected").count() == 1
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/acme/issues/{refs[1]}")
    assert page.problems == []


def _dialog_opened(page, keys: str, name: str):
    """The dialog ``name``, once open after pressing ``keys``."""
    page.keyboard.press(keys)
    dialog = page.get_by_role("dialog", name=name)
    expect(dialog).to_be_visible()
    return dialog


def test_question_mark_lists_the_shortcuts_and_escape_closes_it(acme_page, live_server):
    """ "?" opens a dialog listing the shortcuts; Escape closes it and the focus comes back."""
    page = acme_page
    page.goto(live_server.url + "/acme/projects/WEB/issues?sort=number")
    page.keyboard.press("j")
    dialog = _dialog_opened(page, "?", "Keyboard shortcuts")
    assert dialog.get_by_text("New issue").is_visible()
    assert dialog.get_by_text("Command palette", exact=False).is_visible()
    page.keyboard.press("j")  # a shortcut while the dialog is open does nothing
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator("tr.is-selected a.ref")).to_be_focused()
    assert page.problems == []


def test_palette_finds_an_issue_by_its_title_words(acme_page, live_server):
    """Ctrl-K, the words of an issue's title, Enter: that issue's page."""
    page = acme_page
    page.goto(live_server.url + "/acme/projects/")
    palette = _dialog_opened(page, "Control+k", "Command palette")
    box = palette.get_by_role("combobox")
    expect(box).to_be_focused()
    box.press_sequentially("heron pond", delay=30)
    option = palette.get_by_role("option", name="WEB-3 Heron waits by the pond")
    expect(option).to_have_attribute("aria-selected", "true")
    assert box.get_attribute("aria-activedescendant") == option.get_attribute("id")
    page.keyboard.press("Enter")
    page.wait_for_url("**/acme/issues/WEB-3")
    assert page.problems == []


@pytest.mark.parametrize(
    ("start", "typed", "destination"),
    [
        ("/acme/", "api-1", "/acme/issues/API-1"),
        ("/acme/projects/WEB/issues", "inbox", "/acme/notifications"),
    ],
)
def test_palette_goes_where_the_words_say(acme_page, live_server, start, typed, destination):
    """Ctrl-K, a reference (any case) or a page's name typed fast, Enter at once (before the
    answer came for a reference): that issue, that page."""
    page = acme_page
    page.goto(live_server.url + start)
    page.keyboard.press("Control+k")
    page.keyboard.type(typed)
    page.keyboard.press("Enter")
    page.wait_for_url("**" + destination)
    assert page.problems == []


def test_palette_arrows_move_and_escape_gives_the_focus_back(acme_page, live_server):
    """Arrow keys move the active option; Escape closes the palette and the focus returns."""
    page = acme_page
    page.goto(live_server.url + "/acme/projects/WEB/issues?sort=number")
    page.get_by_label("Text").focus()  # where the focus returns
    page.keyboard.press("Control+k")
    palette, options = page.get_by_role("dialog", name="Command palette"), page.get_by_role("option")
    options = palette.get_by_role("option")
    expect(options.first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    expect(options.first).to_have_attribute("aria-selected", "false")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(options.last).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Escape")
    expect(palette).to_be_hidden()
    expect(page.get_by_label("Text")).to_be_focused()
    assert page.problems == []
