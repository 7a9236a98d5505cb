"""Search in a real headless Chromium: results come as the words are typed."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.accounts import browser_login
from tests.factories import OWNER, make_acme

pytestmark = pytest.mark.browser


def test_results_come_as_the_words_are_typed(page, app, live_server):
    """Typing "Safar" shows "Safari crash" without pressing Enter, grouped under its project,
    and the address is the search's own (shareable)."""
    with app.app_context():
        acme = make_acme(projects=("WEB", "API"))
        acme.add_issue("Safari crash on checkout", project="API")
        acme.add_issue("Firefox works")
        db.session.commit()
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + "/acme/search")
    page.get_by_label("Search issues").press_sequentially("Safar", delay=50)
    page.get_by_role("link", name="API-1 Safari crash on checkout").wait_for()
    assert page.get_by_role("heading", name="API 1").is_visible()
    assert page.get_by_text("1 result for “Safar”").is_visible()
    page.wait_for_url("**/acme/search?q=Safar")
    page.reload()
    assert page.get_by_role("link", name="API-1 Safari crash on checkout").is_visible()
    assert page.problems == []
