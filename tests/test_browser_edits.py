"""Editing in a real headless Chromium: what the browser submits keeps what was not touched."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Issue, IssueActivity
from tests.accounts import browser_login
from tests.factories import make_acme

pytestmark = pytest.mark.browser


def _issue(app, org_id):
    with app.app_context(), tenant_context(org_id):
        issue = db.session.scalars(select(Issue)).one()
        fields = {a.field for a in db.session.scalars(select(IssueActivity))}
        return {
            "title": issue.title,
            "state": issue.state,
            "description": issue.description,
            "assignees": sorted(u.name for u in issue.assignees),
            "labels": sorted(label.name for label in issue.labels),
            "due_date": issue.due_date,
            "estimate": issue.estimate,
            "history": fields,
        }


def test_a_title_edit_keeps_the_rest_and_a_stale_board_move_says_why(page, app, live_server):
    """Saving a new title keeps assignees, labels, due date; moving a card moved meanwhile shows a notice."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"}, labels=("bug",))
        acme.add_issue(
            "Old title",
            "Line one\n\nLine two",
            assignee_ids=[acme.owner.id, acme.people["grace@example.com"].id],
            label_ids=[acme.labels["bug"].id],
            due_date=date(2027, 5, 1),
            estimate=8,
        )
        db.session.commit()
        org_id = acme.id

    browser_login(page, live_server, "owner@example.com")
    page.goto(live_server.url + "/acme/issues/WEB-1")
    page.get_by_text("Edit issue").click()
    page.get_by_label("Title").fill("New title")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    assert _issue(app, org_id) == {
        "title": "New title",
        "state": "todo",
        "description": "Line one\n\nLine two",
        "assignees": ["Grace Hopper", "Olive Owner"],
        "labels": ["bug"],
        "due_date": date(2027, 5, 1),
        "estimate": 8,
        "history": {"created", "title"},
    }

    page.goto(live_server.url + "/acme/projects/WEB/board")
    other = page.context.browser.new_context().new_page()
    browser_login(other, live_server, "grace@example.com")
    other.goto(live_server.url + "/acme/projects/WEB/board")
    card = other.locator(".board-card", has_text="New title")
    card.get_by_label(re.compile("Move WEB-1 to")).select_option("done")
    card.get_by_role("button", name="Move").click()
    other.locator(".board-column", has=other.locator("#col-done")).get_by_text("New title").wait_for()

    card = page.locator(".board-card", has_text="New title")
    card.get_by_label(re.compile("Move WEB-1 to")).select_option("in_review")
    card.get_by_role("button", name="Move").click()
    page.get_by_text("WEB-1 was not moved: Grace Hopper moved it to Done").wait_for()
    page.locator(".board-column", has=page.locator("#col-done")).get_by_text("New title").wait_for()
    assert _issue(app, org_id)["state"] == "done"
    assert [p for p in page.problems if "409" not in p] == []
