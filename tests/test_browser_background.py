"""Background work in a real headless Chromium: a CSV import followed live, then the reports."""

from __future__ import annotations

import re

import pytest

from tests.accounts import browser_login
from tests.factories import make_acme
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.browser, pytest.mark.processes]

ROWS = 1200
CSV = "Title,Status,Assignee,Estimate\n" + "".join(
    f"Imported task {n},{'Done' if n % 3 == 0 else 'Todo'},grace@example.com,{n % 8}\n"
    for n in range(1, ROWS + 1)
)


def test_csv_import_with_live_progress_then_reports(page, app, live_server, migrated_env, tmp_path):
    """Upload a CSV, map it, watch the progress bar fill, see the imported issues and the report charts."""
    with app.app_context():
        from app.extensions import db

        make_acme({"grace@example.com": "member"})
        db.session.commit()

    browser_login(page, live_server, "owner@example.com")
    page.goto(live_server.url + "/acme/projects/WEB/issues")
    page.get_by_role("link", name="Import").click()
    page.get_by_label("CSV file").set_input_files(
        {"name": "tasks.csv", "mimeType": "text/csv", "buffer": CSV.encode()}
    )
    page.get_by_role("button", name="Upload and preview").click()
    assert page.get_by_label("Status").input_value() == "state"  # the mapping is guessed from the header
    assert page.get_by_label("Assignee").input_value() == "assignees"
    page.get_by_role("button", name=f"Import {ROWS:,} rows").click()
    progress = page.locator("progress#task-progress")
    progress.wait_for()
    assert page.get_by_text("Queued").count() == 1

    worker = WorkerProcess(migrated_env, tmp_path / "worker.log")
    try:
        page.get_by_text("Finished").wait_for(timeout=90_000)
        assert progress.get_attribute("value") == "100"
        assert page.get_by_role("row", name=f"Imported {ROWS:,}").count() == 1
        page.get_by_role("link", name="Open WEB issues").click()
        page.get_by_role("link", name=re.compile(r"^Imported task \d+$")).first.wait_for()
        assert page.get_by_role("link", name=re.compile(r"^Imported task \d+$")).count() == 50  # a full page

        page.get_by_role("link", name="Reports", exact=True).first.click()
        page.get_by_role("img", name="Throughput per week").wait_for(timeout=60_000)
        assert page.locator("svg[role=img]").count() == 5
        assert page.locator("progress").count() == 0
    finally:
        worker.stop()
    assert page.problems == []
