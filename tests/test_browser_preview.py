"""Writing an issue in a real headless Chromium: a description and a comment previewed as their
page will show them before anything is saved, and assignees and labels picked by typing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Issue
from tests.accounts import browser_login
from tests.factories import make_acme

pytestmark = pytest.mark.browser


def test_a_description_and_a_comment_preview_before_they_are_saved(page, app, live_server):
    """Grace previews a new issue's description and a comment: bold, a list and a mention show as
    they will, and nothing is saved until she submits."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"})
        acme.add_issue("Checkout fails on Safari")
        db.session.commit()
    browser_login(page, live_server, "grace@example.com")

    page.goto(live_server.url + "/acme/projects/WEB/issues/new")
    page.get_by_label("Description").fill("**Steps** for @grace:\n\n- pay\n- boom")
    page.get_by_role("button", name="Preview").click()
    output = page.locator(".preview__output")
    output.get_by_text("Steps").wait_for()
    assert output.locator("strong").inner_text() == "Steps"
    assert output.get_by_role("link", name="@grace").is_visible()
    assert output.locator("li").all_inner_texts() == ["pay", "boom"]

    page.goto(live_server.url + "/acme/issues/WEB-1")
    page.get_by_label("Comment").fill("Seen on *iOS* too")
    comment_form = page.locator("form", has=page.get_by_label("Comment"))
    comment_form.get_by_role("button", name="Preview").click()
    comment_form.locator(".preview__output em").get_by_text("iOS").wait_for()
    assert (
        page.get_by_text("Seen on iOS too").count() == 0
        or "Seen on" not in page.locator(".timeline").inner_text()
    )
    assert page.problems == [], "\n".join(page.problems)


def test_assignees_and_labels_are_picked_by_typing(page, app, live_server):
    """In the edit form Olive finds Grace by typing, picks her with Enter, takes a label off by
    its chip, adds one by its checkbox, creates one by typing its name, and saving keeps exactly
    those."""
    with app.app_context():
        acme = make_acme(
            {"grace@example.com": "member", "vic@example.com": "viewer"}, labels=("bug", "ui", "backend")
        )
        acme.add_issue("Checkout fails", label_ids=[acme.labels["bug"].id], assignee_ids=[acme.owner.id])
        db.session.commit()
        org_id = acme.id
    browser_login(page, live_server, "owner@example.com")
    page.goto(live_server.url + "/acme/issues/WEB-1")
    page.get_by_text("Edit issue").click()
    find = page.get_by_role("searchbox", name="Assignees")
    find.fill("gra")
    assignees = page.get_by_role("group", name="Assignees")
    assert assignees.get_by_role("checkbox", name="Grace Hopper").is_visible()
    assert assignees.get_by_role("checkbox", name="Vic Viewer").is_hidden()
    find.press("Enter")
    chips = page.get_by_role("list", name="Chosen assignees").get_by_role("listitem")
    assert sorted(text.strip().rstrip("\u00d7").strip() for text in chips.all_inner_texts()) == [
        "Grace Hopper",
        "Olive Owner",
    ]
    assert chips.get_by_role("button", name="Remove Grace Hopper").is_visible()
    page.get_by_role("button", name="Remove bug").click()
    page.get_by_role("group", name="Labels").get_by_role("checkbox", name="ui").check()
    labels = page.get_by_role("searchbox", name="Labels")
    labels.fill("Frontend")
    assert page.get_by_role("button", name="Create “Frontend”").is_visible()
    labels.press("Enter")  # creates it
    page.get_by_role("list", name="Chosen labels").get_by_text("Frontend (new)").wait_for()
    assert page.locator("details.edit").get_by_label("New label").is_hidden()  # the edit form of all fields
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    with app.app_context(), tenant_context(org_id):
        issue = db.session.scalars(select(Issue)).one()
        assert sorted(u.email for u in issue.assignees) == ["grace@example.com", "owner@example.com"]
        assert sorted(label.name for label in issue.labels) == ["Frontend", "ui"]
    assert page.problems == [], "\n".join(page.problems)
