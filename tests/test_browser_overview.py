"""A new organization's overview in a real headless Chromium: its owner follows the first step
from the checklist and comes back to find it ticked."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from tests.accounts import browser_login
from tests.factories import OWNER, make_acme

pytestmark = pytest.mark.browser


def test_a_new_owner_creates_a_project_from_the_checklist(page, app, live_server):
    """Olive, owner of an empty Acme, sees the three first steps, creates a project from the
    first one, and the overview then shows it ticked, with the project's counts."""
    with app.app_context():
        make_acme(projects=())
        db.session.commit()
    browser_login(page, live_server, OWNER)
    checklist = page.get_by_role("region", name="Set up Acme")
    assert checklist.is_visible()
    assert checklist.get_by_role("listitem").count() == 3
    assert checklist.get_by_text("Done").count() == 0

    checklist.get_by_role("link", name="Create a project").click()
    page.get_by_role("heading", name="New project").wait_for()
    page.get_by_label("Name").fill("Website")
    page.get_by_label("Key", exact=True).fill("WEB")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(re.compile(r".*/acme/projects/WEB/issues$"))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
    page.wait_for_url(re.compile(r".*/acme/$"))
    project_step = checklist.locator('[data-step="project"]')
    assert "overview-step--done" in (project_step.get_attribute("class") or "")
    assert project_step.get_by_text("Done").is_visible()
    assert checklist.get_by_role("link", name="Import issues from a CSV").is_visible()
    projects = page.get_by_role("region", name="Projects")
    assert projects.get_by_role("link", name="Website").is_visible()
    assert projects.get_by_role("link", name="0 open").is_visible()
    assert page.problems == []
