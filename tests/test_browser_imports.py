"""A CSV import in a real headless Chromium: the preview's counts per mode, then the rejected rows."""

from __future__ import annotations

import csv
import io

import pytest

from app.extensions import db
from tests.accounts import browser_login
from tests.factories import OWNER, make_acme
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.browser, pytest.mark.processes]

CSV = (
    "Title,Assignee,Estimate\n"
    "Fix the login page,grace@example.com,3\n"
    "Write the notes,nobody@example.com,2\n"
    ",grace@example.com,1\n"
    "Plan the roadmap,,lots\n"
)


def test_preview_counts_then_download_the_rejected_rows(page, app, live_server, migrated_env, tmp_path):
    """The preview counts rows imported, with warnings and rejected, again when strict mode is ticked;
    after the import the status says a row was rejected and the rejected rows download as CSV."""
    with app.app_context():
        make_acme({"grace@example.com": "member"})
        db.session.commit()
    browser_login(page, live_server, OWNER)
    page.goto(live_server.url + "/acme/projects/WEB/import")
    page.get_by_label("CSV file").set_input_files(
        {"name": "tasks.csv", "mimeType": "text/csv", "buffer": CSV.encode()}
    )
    page.get_by_role("button", name="Upload and preview").click()
    outcome = page.locator("#import-outcome")
    outcome.wait_for()
    assert page.locator("#outcome-imported").inner_text() == "3"
    assert page.locator("#outcome-warnings").inner_text() == "2"
    assert page.locator("#outcome-rejected").inner_text() == "1"

    page.get_by_label("Strict mode").check()  # htmx counts again on the change
    page.get_by_text("What the import will do (strict mode)").wait_for()
    assert page.locator("#outcome-imported").inner_text() == "1"
    assert page.locator("#outcome-rejected").inner_text() == "3"
    page.get_by_label("Strict mode").uncheck()
    page.get_by_role("heading", name="What the import will do", exact=True).wait_for()
    assert page.locator("#outcome-rejected").inner_text() == "1"

    page.get_by_role("button", name="Import 4 rows").click()
    page.locator("progress#task-progress").wait_for()
    worker = WorkerProcess(migrated_env, tmp_path / "worker.log")
    try:
        page.get_by_text("Finished with 1 rejected row and 2 rows imported with warnings").wait_for(
            timeout=90_000
        )
    finally:
        worker.stop()
    assert page.get_by_role("cell", name="nobody@example.com", exact=True).count() == 1
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the 1 rejected row (CSV)").click()
    download = download_info.value
    assert download.suggested_filename == "tasks-rejected.csv"
    with open(download.path(), encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(io.StringIO(stream.read())))
    assert rows == [
        ["Title", "Assignee", "Estimate", "Import problems"],
        ["", "grace@example.com", "1", "the title is empty"],
    ]
    assert page.problems == []
