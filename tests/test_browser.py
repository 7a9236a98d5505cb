"""Pages in a real headless Chromium."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.accounts import PASSWORD, make_user
from tests.conftest import run_flask

pytestmark = pytest.mark.browser


def test_home_page_has_no_console_errors(page, live_server):
    """The home page loads its assets and runs its scripts without a console error."""
    response = page.goto(live_server.url + "/")
    assert response.status == 200
    assert "Worklane" in page.title()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.problems == []


@pytest.mark.processes
def test_system_check_progress_updates_live(app, page, live_server, migrated_env, monkeypatch):
    """An operator's check shows its page, which updates to Finished by itself once a worker ran it."""
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({"ops@example.com"}))
    with app.app_context():
        make_user("ops@example.com", name="Otto Operator")
        db.session.commit()
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill("ops@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")
    page.goto(live_server.url + "/operators/")
    page.get_by_role("button", name="Run a system check").click()
    page.wait_for_url("**/operators/system-check/*")
    assert page.locator(".badge").inner_text() == "Queued"
    result = run_flask(migrated_env, "worker", "--burst")
    assert result.returncode == 0, result.stderr
    page.locator(".badge", has_text="Finished").wait_for(timeout=10_000)
    assert page.locator("progress").get_attribute("value") == "100"
    assert page.problems == []
