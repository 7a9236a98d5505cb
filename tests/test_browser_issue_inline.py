"""An issue's fields changed where its page shows them, in a real headless Chromium: each field by
mouse and by keyboard, two people at once, a refused value, a reader, and the page without script."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Issue
from tests.accounts import browser_login
from tests.factories import OWNER, make_acme
from tests.test_browser_accessibility import serious_violations
from tests.test_issue_fields import fields_of

pytestmark = pytest.mark.browser

ISSUE = "/acme/issues/WEB-1"


def _acme(app) -> None:
    """Acme with Grace (member) and Vic (viewer), labels bug and ui, and WEB-1 labelled bug."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member", "vic@example.com": "viewer"}, labels=("bug", "ui"))
        acme.add_issue("Broken login", "Words.", label_ids=[acme.labels["bug"].id])
        db.session.commit()


def _stored(app) -> dict:
    with app.app_context(), unscoped("test: the one issue, as stored"):
        return fields_of(db.session.scalars(select(Issue)).one())


def _detail(page, term: str):
    """The value shown for ``term`` in the issue's details."""
    return page.locator(f"dl.details dt:text-is('{term}') + dd")


def _open(page, name: str, label: str):
    """Click the field's Change button; its form opens."""
    page.get_by_role("button", name=f"Change {label}", exact=True).click()
    form = page.locator(f"#edit-{name}")
    expect(form).to_be_visible()
    return form


def _said(page, text: str) -> None:
    expect(page.locator("#issue-fields-status")).to_have_text(text)


def test_each_field_changed_in_place_shows_after_reload(page, app, live_server):
    """Olive changes state, priority, assignees, labels (creating one), due date and estimate, each
    in place; each is announced, and the page after a reload shows them all."""
    _acme(app)
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + ISSUE)
    expect(page.locator("form.field-edit").first).to_be_hidden()  # folded until asked for

    _open(page, "state", "state").get_by_label("State").select_option(label="In progress")
    page.locator("#edit-state").get_by_role("button", name="Save").click()
    _said(page, "State saved: In progress.")
    expect(page.get_by_role("button", name="Change state")).to_be_focused()
    expect(page.locator(".issue__meta .state")).to_have_text("In progress")  # the header follows

    _open(page, "priority", "priority").get_by_label("Priority").select_option(label="High")
    page.locator("#edit-priority").get_by_role("button", name="Save").click()
    _said(page, "Priority saved: High.")

    form = _open(page, "assignees", "assignees")
    find = form.get_by_role("searchbox", name="Assignees")
    expect(find).to_be_focused()
    find.fill("gra")
    find.press("Enter")
    form.get_by_role("button", name="Save").click()
    _said(page, "Assignees saved: Grace Hopper.")

    form = _open(page, "labels", "labels")
    form.get_by_role("group", name="Labels").get_by_role("checkbox", name="ui").check()
    find = form.get_by_role("searchbox", name="Labels")
    find.fill("Needs design")
    find.press("Enter")  # nothing matches: Enter creates it
    form.get_by_role("button", name="Save").click()
    _said(page, "Labels saved: bug, Needs design, ui.")

    _open(page, "due_date", "due date").get_by_label("Due date").fill("2027-03-14")
    page.locator("#edit-due_date").get_by_role("button", name="Save").click()
    _said(page, "Due date saved: 2027-03-14.")

    _open(page, "estimate", "estimate").get_by_label("Estimate").fill("8")
    page.locator("#edit-estimate").get_by_role("button", name="Save").click()
    _said(page, "Estimate saved: 8.")

    page.reload()
    expect(_detail(page, "State").locator(".state")).to_have_text("In progress")
    expect(_detail(page, "Priority")).to_contain_text("High")
    expect(_detail(page, "Assignees")).to_contain_text("Grace Hopper")
    expect(_detail(page, "Labels")).to_contain_text("bugNeeds designui")
    expect(_detail(page, "Due")).to_contain_text("14 Mar 2027")
    expect(_detail(page, "Estimate")).to_contain_text("8")
    expect(page.get_by_text("Olive Owner changed estimate to 8")).to_be_visible()
    assert _stored(app) == {
        "state": "in_progress",
        "priority": 3,
        "assignees": ["Grace Hopper"],
        "labels": ["Needs design", "bug", "ui"],
        "due_date": "2027-03-14",
        "estimate": 8,
    }
    assert page.problems == []


def test_two_people_change_fields_in_place(page, app, live_server):
    """A loads; B changes the state; A changes the priority in place: both kept. A then changes the
    state from its stale page: refused in place with B's value, A's choice kept; saving again keeps A's."""
    _acme(app)
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + ISSUE)
    other = page.context.browser.new_context().new_page()
    browser_login(other, live_server, "grace@example.com")
    other.goto(live_server.url + ISSUE)
    _open(other, "state", "state").get_by_label("State").select_option(label="In review")
    other.locator("#edit-state").get_by_role("button", name="Save").click()
    _said(other, "State saved: In review.")

    _open(page, "priority", "priority").get_by_label("Priority").select_option(label="Urgent")
    page.locator("#edit-priority").get_by_role("button", name="Save").click()
    _said(page, "Priority saved: Urgent.")
    expect(_detail(page, "State").locator(".state")).to_have_text("In review")  # B's change, shown with A's
    assert (_stored(app)["state"], _stored(app)["priority"]) == ("in_review", 4)

    other.goto(live_server.url + ISSUE)  # B changes the state again; A's page still shows "In review"
    _open(other, "state", "state").get_by_label("State").select_option(label="Done")
    other.locator("#edit-state").get_by_role("button", name="Save").click()
    _said(other, "State saved: Done.")

    form = _open(page, "state", "state")
    form.get_by_label("State").select_option(label="Cancelled")
    form.get_by_role("button", name="Save").click()
    alert = page.locator("#edit-state").get_by_role("alert")
    expect(alert).to_contain_text(
        "Not saved: Grace Hopper changed the state to “Done” since you opened the page."
    )
    expect(alert).to_contain_text("Your choice, “Cancelled”, is kept below")
    expect(page.locator("#edit-state").get_by_label("State")).to_have_value("cancelled")
    expect(page.locator("#edit-state").get_by_label("State")).to_be_focused()
    assert (_stored(app)["state"], _stored(app)["priority"]) == ("done", 4)

    page.locator("#edit-state").get_by_role("button", name="Save").click()
    _said(page, "State saved: Cancelled.")
    assert (_stored(app)["state"], _stored(app)["priority"]) == ("cancelled", 4)
    assert [p for p in page.problems if "409" not in p] == []
    other.context.close()


def test_keyboard_only(page, app, live_server):
    """Tab to a field's Change button, Enter, type, Enter saves; Escape closes unsaved; a select
    changes with the arrow keys and saves from its Save button."""
    _acme(app)
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + ISSUE)
    change = page.get_by_role("button", name="Change estimate")
    for _ in range(80):
        page.keyboard.press("Tab")
        if change.evaluate("(button) => button === document.activeElement"):
            break
    expect(change).to_be_focused()
    page.keyboard.press("Enter")
    field = page.locator("#edit-estimate").get_by_label("Estimate")
    expect(field).to_be_focused()
    page.keyboard.type("5")
    page.keyboard.press("Enter")
    _said(page, "Estimate saved: 5.")
    expect(page.get_by_role("button", name="Change estimate")).to_be_focused()

    page.keyboard.press("Enter")
    expect(field).to_be_focused()
    page.keyboard.type("0")
    page.keyboard.press("Escape")
    expect(page.locator("#edit-estimate")).to_be_hidden()
    expect(page.get_by_role("button", name="Change estimate")).to_be_focused()
    expect(page.get_by_role("button", name="Change estimate")).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Shift+Tab")  # back to Change due date, and so on up to Change priority
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Change priority")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#edit-priority").get_by_label("Priority")).to_be_focused()
    page.keyboard.press("ArrowDown")  # from "No priority" (the last) nothing below; up is Low
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Tab")
    expect(page.locator("#edit-priority").get_by_role("button", name="Save")).to_be_focused()
    page.keyboard.press("Enter")
    _said(page, "Priority saved: Low.")
    assert (_stored(app)["estimate"], _stored(app)["priority"]) == (5, 1)
    assert page.problems == []


def test_a_bad_value_is_refused_in_place(page, app, live_server):
    """An estimate over 1000 is refused by the field, in place; nothing is stored."""
    _acme(app)
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + ISSUE)
    form = _open(page, "estimate", "estimate")
    form.get_by_label("Estimate").fill("5000")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#edit-estimate").get_by_role("alert")).to_have_text(
        "Not saved: correct the value below."
    )
    expect(page.locator("#edit-estimate")).to_contain_text("Between 0 and 1000.")
    expect(page.locator("#edit-estimate").get_by_label("Estimate")).to_be_focused()
    assert _stored(app)["estimate"] is None
    assert [p for p in page.problems if "422" not in p] == []


def test_a_reader_sees_values_and_no_controls(page, app, live_server):
    """Vic (viewer) sees every field's value and no Change button or field form."""
    _acme(app)
    browser_login(page, live_server, "vic@example.com")
    page.goto(live_server.url + ISSUE)
    expect(_detail(page, "State")).to_have_text("Todo")
    expect(_detail(page, "Labels")).to_have_text("bug")
    assert page.get_by_role("button", name=re.compile("^Change")).count() == 0
    assert page.locator("form.field-edit").count() == 0
    assert page.problems == []


def test_without_script_a_field_form_is_a_plain_form(page, app, live_server):
    """With script off the field forms stand under the values and post as plain forms."""
    _acme(app)
    plain = page.context.browser.new_context(java_script_enabled=False).new_page()
    browser_login(plain, live_server, OWNER)
    plain.goto(live_server.url + ISSUE)
    form = plain.locator("#edit-state")
    expect(form).to_be_visible()
    form.get_by_label("State").select_option(label="Done")
    form.get_by_role("button", name="Save").click()
    plain.get_by_text("Saved.").wait_for()
    expect(_detail(plain, "State").locator(".state")).to_have_text("Done")
    assert _stored(app)["state"] == "done"
    plain.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_open_field_forms_pass_axe(page, app, live_server, scheme):
    """With the labels' picker open and an estimate refused in place, the page passes axe-core's
    WCAG A/AA rules at serious and critical."""
    _acme(app)
    page.emulate_media(color_scheme=scheme)
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + ISSUE)
    form = _open(page, "estimate", "estimate")
    form.get_by_label("Estimate").fill("5000")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#edit-estimate").get_by_role("alert")).to_be_visible()
    _open(page, "labels", "labels")
    violations = serious_violations(page)
    assert violations == [], "\n".join(violations)
    assert [p for p in page.problems if "422" not in p] == []
