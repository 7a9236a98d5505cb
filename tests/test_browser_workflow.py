"""A project's workflow states in a real headless Chromium: an admin adds a state, renames it,
moves it, sees it as a board column, moves a card into it, filters the list by it and deletes it,
its issues moved to another state; a member sees the states and no controls."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Issue
from tests.accounts import browser_login
from tests.factories import OWNER, make_acme

pytestmark = pytest.mark.browser


@pytest.fixture
def acme_web(app):
    """Acme's WEB with WEB-1 and WEB-2 in Todo; Grace a member."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"})
        acme.add_issue("Alpha")
        acme.add_issue("Bravo")
        db.session.commit()
        return acme.id


def _settings(page, live_server):
    page.goto(live_server.url + "/acme/projects/WEB/settings")


def _started_names(page) -> list[str]:
    return page.locator('ol[aria-label="Started states"] input[name="name"]').evaluate_all(
        "inputs => inputs.map(input => input.value)"
    )


def _columns(page) -> list[str]:
    return page.locator(".board-column__cards").evaluate_all("lists => lists.map(list => list.dataset.label)")


def test_an_admin_shapes_the_workflow_and_it_shows_everywhere(page, app, live_server, acme_web):
    """Add QA (started), rename it, move it up, use it on the board and in the list filter, delete it."""
    browser_login(page, live_server, OWNER)
    _settings(page, live_server)
    page.locator("#states").get_by_label("Name", exact=True).fill("QA")
    page.locator("#states").get_by_label("Category").select_option(label="Started")
    page.get_by_role("button", name="Add state").click()
    page.get_by_text("Added the state QA.").wait_for()
    assert _started_names(page) == ["In progress", "In review", "QA"]

    page.get_by_label("Name of QA").fill("Quality check")
    page.locator('li[data-state="qa"]').get_by_role("button", name="Rename").click()
    page.get_by_text("The state is now called Quality check.").wait_for()
    page.get_by_role("button", name="Move Quality check up").click()
    page.wait_for_load_state()
    assert _started_names(page) == ["In progress", "Quality check", "In review"]

    page.goto(live_server.url + "/acme/projects/WEB/board")
    assert _columns(page) == [
        "Backlog",
        "Todo",
        "In progress",
        "Quality check",
        "In review",
        "Done",
        "Cancelled",
    ]
    page.get_by_label("Move WEB-1 to").select_option(label="Quality check")
    page.locator("#card-" + _id(app, acme_web, 1)).get_by_role("button", name="Move", exact=True).click()
    page.locator('ol[data-state="qa"] .board-card[data-ref="WEB-1"]').wait_for()
    page.reload()
    assert page.locator('ol[data-state="qa"] .board-card').count() == 1

    page.goto(live_server.url + "/acme/projects/WEB/issues")
    with page.expect_response(lambda response: "state=qa" in response.url):
        page.get_by_label("State", exact=True).select_option(label="Quality check")
    page.get_by_role("button", name="Remove filter State: Quality check").wait_for()
    page.locator("#issue-list").get_by_text("Bravo").wait_for(state="detached")
    assert page.locator("#issue-list").get_by_text("Quality check").count() >= 1
    page.reload()
    assert "Alpha" in page.locator("#issue-list").inner_text()
    assert "Bravo" not in page.locator("#issue-list").inner_text()

    _settings(page, live_server)
    row = page.locator('li[data-state="qa"]')
    row.get_by_label("Move its issues to").select_option(label="Done")
    row.get_by_role("button", name="Delete Quality check").click()
    page.get_by_text("Its 1 issue move to Done.").wait_for()
    page.get_by_role("button", name="Delete this state").click()
    page.get_by_text("Deleted Quality check; 1 issues moved to Done.").wait_for()
    assert _started_names(page) == ["In progress", "In review"]
    with app.app_context(), tenant_context(acme_web):
        states = dict(db.session.execute(select(Issue.title, Issue.state)).all())
    assert states == {"Alpha": "done", "Bravo": "todo"}
    page.goto(live_server.url + "/acme/projects/WEB/board")
    assert "Quality check" not in _columns(page)
    assert page.locator('ol[data-state="done"] .board-card[data-ref="WEB-1"]').count() == 1
    assert page.problems == [], "\n".join(page.problems)


def test_the_last_completed_state_cannot_be_deleted_and_members_only_read(page, app, live_server, acme_web):
    """The only completed state says why it stays; a member sees the states without controls."""
    browser_login(page, live_server, OWNER)
    _settings(page, live_server)
    done = page.locator('li[data-state="done"]')
    done.get_by_text("Done is the project's only completed state").wait_for()
    assert done.get_by_role("button", name="Delete Done").count() == 0
    page.context.clear_cookies()
    browser_login(page, live_server, "grace@example.com")
    _settings(page, live_server)
    page.get_by_text("Only owners and admins change the workflow states.").wait_for()
    assert page.locator('#states input[name="name"]').count() == 0
    assert page.problems == [], "\n".join(page.problems)


def _id(app, org_id, number: int) -> str:
    with app.app_context(), tenant_context(org_id):
        return str(db.session.scalar(select(Issue.id).where(Issue.number == number)))
