"""Editing in a real headless Chromium: what the browser submits keeps what was not touched."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.issues import services as issues
from app.models import Issue, IssueActivity, Label, Project
from tests.accounts import add_member, make_org, make_user
from tests.test_browser import page  # noqa: F401  (the Chromium page fixture)
from tests.test_browser_work import _log_in

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


def test_a_title_edit_keeps_the_rest_and_a_stale_board_move_says_why(page, app, live_server):  # noqa: F811
    """Saving a new title keeps assignees, labels, due date; moving a card moved meanwhile shows a notice."""
    with app.app_context():
        owner = make_user("owner@example.com", name="Olive Owner")
        grace = make_user("grace@example.com", name="Grace Hopper")
        org = make_org(owner, "Acme", "acme")
        add_member(org, grace, "member")
        with tenant_context(org.id):
            project = Project(key="WEB", name="Website")
            bug = Label(name="bug")
            db.session.add_all([project, bug])
            db.session.flush()
            issues.create_issue(
                project,
                owner,
                "Old title",
                "Line one\n\nLine two",
                assignee_ids=[owner.id, grace.id],
                label_ids=[bug.id],
                due_date=date(2027, 5, 1),
                estimate=8,
            )
        db.session.commit()
        org_id = org.id

    _log_in(page, live_server, "owner@example.com")
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
    _log_in(other, live_server, "grace@example.com")
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
