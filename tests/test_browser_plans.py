"""Plans and flags in a real headless Chromium: an operator puts Acme on a smaller plan, its owner
reads the usage and meets the quota on the new-project form; an operator sets a flag."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.accounts import make_user
from tests.factories import make_acme
from tests.test_browser_operator_tenants import _sign_in

pytestmark = pytest.mark.browser

PROJECTS = {"WEB": "Website", "API": "Public API", "OPS": "Operations"}


@pytest.fixture
def operator_and_acme(app, monkeypatch):
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({"ops@example.com"}))
    with app.app_context():
        make_user("ops@example.com", name="Otto Operator")
        make_acme({"grace@example.com": "member"}, projects=PROJECTS)
        db.session.commit()


def test_an_operator_sets_a_plan_and_the_owner_meets_its_quota(page, app, live_server, operator_and_acme):
    """Otto moves Acme from Business to Free; Olive reads 3 of 3 projects on her usage page, and the
    new-project form refuses a fourth with the plan's message, keeping what she typed."""
    _sign_in(page, live_server, "ops@example.com")
    page.goto(live_server.url + "/operators/organizations?q=acme")
    page.get_by_role("link", name="Plan of Acme").click()
    page.get_by_label("Plan", exact=True).select_option(label="Free")
    page.get_by_role("button", name="Save the plan").click()
    page.get_by_text("Acme is on Free now.").wait_for()
    assert page.get_by_text("/acme/ is on Free.").is_visible()

    page.context.clear_cookies()
    _sign_in(page, live_server, "owner@example.com")
    page.goto(live_server.url + "/acme/settings")
    page.get_by_role("link", name="Plan and usage").click()
    page.get_by_role("heading", name="Plan and usage").wait_for()
    projects = page.locator("#usage-projects")
    assert " ".join(projects.inner_text().split()).startswith("Active projects 3 3")
    assert projects.get_by_role("progressbar").get_attribute("value") == "100"

    page.goto(live_server.url + "/acme/projects/new")
    page.get_by_label("Name", exact=True).fill("Mobile")
    page.get_by_label("Key", exact=True).fill("MOB")
    page.get_by_role("button", name="Create project").click()
    page.get_by_text("Your plan (Free) includes 3 active projects.").wait_for()
    assert page.get_by_label("Name", exact=True).input_value() == "Mobile"
    assert [p for p in page.problems if "status of 422" not in p] == []


def test_an_operator_rolls_a_flag_out_to_a_percentage(page, app, live_server, operator_and_acme):
    """Otto sets report downloads to 10% of organizations, then lists Acme alone; the page shows
    each as saved, by him."""
    _sign_in(page, live_server, "ops@example.com")
    page.goto(live_server.url + "/operators/")
    page.get_by_role("link", name="Feature flags").click()
    card = page.locator("#flag-report_downloads")
    card.get_by_label("On for a percentage of organizations").check()
    card.get_by_label("Percentage of organizations", exact=True).fill("10")
    card.get_by_role("button", name="Save report_downloads").click()
    page.get_by_text("report_downloads: on for 10% of organizations.").wait_for()
    card = page.locator("#flag-report_downloads")
    assert card.get_by_label("Percentage of organizations", exact=True).input_value() == "10"
    assert card.get_by_text("Set by ops@example.com").is_visible()
    card.get_by_label("On for the organizations listed").check()
    card.get_by_label("Organizations", exact=True).fill("acme, nowhere")
    card.get_by_role("button", name="Save report_downloads").click()
    page.get_by_text("No organization has the address nowhere.").wait_for()
    card = page.locator("#flag-report_downloads")
    card.get_by_label("Organizations", exact=True).fill("acme")
    card.get_by_role("button", name="Save report_downloads").click()
    page.get_by_text("report_downloads: on for the organizations listed.").wait_for()
    assert (
        page.locator("#flag-report_downloads").get_by_label("Organizations", exact=True).input_value().strip()
        == "acme"
    )
    assert [p for p in page.problems if "status of 422" not in p] == []
