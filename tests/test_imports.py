"""CSV import of issues: upload, preview and mapping, then a real worker imports the rows."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select

from app.core.storage import file_store
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Issue, IssueActivity, Project, Task, User
from tests.accounts import login, make_org, make_user
from tests.conftest import csrf_token_from, run_flask
from tests.factories import make_acme
from tests.support.workers import WorkerProcess, wait_for

pytestmark = pytest.mark.processes

IMPORT_URL = "/acme/projects/WEB/import"
GOOD_CSV = (
    "Summary,Status,Priority,Assignee,Labels,Due date,Estimate,Notes\n"
    "Fix the login page,In progress,High,grace@example.com,bug,2026-12-31,3,Users see a blank page\n"
    'Write the release notes,done,urgent,"Grace Hopper; owner@example.com","bug, Frontend",,,\n'
    "Plan the roadmap,,,,,,,Quarterly zebracorn planning\n"
)


@pytest.fixture
def acme(app, committed_db):
    """Acme (owner Olive, member Grace, viewer Vic) with project WEB and labels bug and frontend."""
    with app.app_context():
        acme = make_acme(
            {"grace@example.com": "member", "vic@example.com": "viewer"}, labels=("bug", "frontend")
        )
        db.session.commit()
        return acme.id


def _client(app, email="owner@example.com"):
    client = app.test_client()
    login(client, email)
    return client


def _upload(client, content: bytes | str, filename="issues.csv", strict=False):
    token = csrf_token_from(client.get(IMPORT_URL).get_data(as_text=True))
    data = content.encode() if isinstance(content, str) else content
    # The body is built here: the test client spools large bodies to a file it never closes.
    boundary = "worklane-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            + (
                f'--{boundary}\r\nContent-Disposition: form-data; name="strict"\r\n\r\ny\r\n'
                if strict
                else ""
            )
            + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return client.post(IMPORT_URL, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def _upload_token(page: str) -> str:
    return re.search(r'name="upload" type="hidden" value="([0-9a-f]{32})"', page).group(1)


def _selected(page: str) -> list[str]:
    """The field chosen for each column of the preview, in column order."""
    selects = re.findall(r'<select[^>]*name="column-(\d+)"[^>]*>(.*?)</select>', page, re.S)
    return [re.search(r'value="(\w+)" selected', options).group(1) for _, options in selects]


def _start(client, page: str, mapping: list[str] | None = None, strict: bool = False, action: str = "start"):
    """Confirm the preview (with its guessed mapping, or ``mapping``); the response of the POST."""
    mapping = mapping or _selected(page)
    data = {"csrf_token": csrf_token_from(page), "upload": _upload_token(page)}
    data.update({f"column-{i}": value for i, value in enumerate(mapping)})
    if strict:
        data["strict"] = "y"
    return client.post(f"{IMPORT_URL}/{action}", data=data)


def _import(app, migrated_env, client, content: str, strict: bool = False) -> dict:
    """Upload, confirm, let a worker run it; the finished task's status as JSON."""
    page = _upload(client, content).get_data(as_text=True)
    response = _start(client, page, strict=strict)
    assert response.status_code == 303
    task_url = response.headers["Location"]
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    status = client.get(f"{task_url}/status?format=json").json
    assert status["status"] == "finished", status
    return status


def _issues(app, org_id) -> list[Issue]:
    with app.app_context(), tenant_context(org_id):
        return db.session.scalars(select(Issue).order_by(Issue.number)).unique().all()


def _issue_count(app, org_id) -> int:
    """Counted as a page view reads: without waiting for the importing worker's write lock."""
    from sqlalchemy.orm import Session

    with (
        app.app_context(),
        tenant_context(org_id),
        Session(db.engine.execution_options(sqlite_read_only=True)) as session,
    ):
        return session.scalar(select(func.count()).select_from(Issue))


def _stored_files(app, org_id) -> list:
    """The organization's stored import files (uploads and what their previews know)."""
    with app.app_context():
        return file_store().list(f"t/{org_id}/imports")


def test_the_preview_shows_the_file_and_guesses_the_mapping(app, acme):
    """Uploading shows the header, the first rows and each column's field guessed from its name."""
    client = _client(app)
    issues_page = client.get("/acme/projects/WEB/issues").get_data(as_text=True)
    assert 'href="/acme/projects/WEB/import"' in issues_page
    response = _upload(client, GOOD_CSV)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "3 rows" in page and "Fix the login page" in page and "Users see a blank page" in page
    assert _selected(page) == [
        "title",
        "state",
        "priority",
        "assignees",
        "labels",
        "due_date",
        "estimate",
        "description",
    ]
    assert len(_stored_files(app, acme)) == 2  # the file and what the preview knows of it


def test_a_mapping_without_a_title_is_refused(app, acme):
    """Confirming a mapping with no title column, or a field chosen twice, shows why (422)."""
    client = _client(app)
    page = _upload(client, GOOD_CSV).get_data(as_text=True)
    response = _start(client, page, ["ignore"] * 8)
    assert response.status_code == 422
    assert "Choose the column that holds the issues" in response.get_data(as_text=True)
    twice = _start(client, page, ["title", "state", "state", *["ignore"] * 5])
    assert twice.status_code == 422 and "State is chosen twice" in twice.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Task)) == 0


def test_good_rows_are_imported_with_their_fields(app, acme, migrated_env):
    """Rows become numbered issues with state, priority, assignees, labels, dates, history and search."""
    client = _client(app)
    assert "Plan the roadmap" not in client.get("/acme/projects/WEB/issues").get_data(as_text=True)
    status = _import(app, migrated_env, client, GOOD_CSV)
    assert status["counts"]["imported"] == 3 and status["counts"]["rejected"] == 0
    issues = _issues(app, acme)
    assert [(i.number, i.title) for i in issues] == [
        (1, "Fix the login page"),
        (2, "Write the release notes"),
        (3, "Plan the roadmap"),
    ]
    first, second, third = issues
    assert (first.state, first.priority, first.estimate) == ("in_progress", 3, 3)
    assert str(first.due_date) == "2026-12-31"
    assert first.description == "Users see a blank page"
    assert [u.email for u in first.assignees] == ["grace@example.com"]
    assert [label.name for label in first.labels] == ["bug"]
    assert (second.state, second.priority, second.closed_at is not None) == ("done", 4, True)
    assert sorted(u.name for u in second.assignees) == ["Grace Hopper", "Olive Owner"]
    assert [label.name for label in second.labels] == ["bug", "frontend"]
    assert (third.state, third.priority, third.assignees) == ("todo", 0, [])
    with app.app_context(), tenant_context(acme):
        created = db.session.scalars(select(IssueActivity).where(IssueActivity.field == "created")).all()
        olive = db.session.scalar(select(User).where(User.email == "owner@example.com"))
        assert len(created) == 3 and {a.actor_id for a in created} == {olive.id}
        assert db.session.scalar(select(Project.issue_counter)) == 3
    assert "Plan the roadmap" in client.get("/acme/projects/WEB/issues").get_data(as_text=True)
    assert "WEB-3" in client.get("/acme/search?q=zebracorn").get_data(as_text=True)
    page = client.get(f"/acme/tasks/{status['id']}").get_data(as_text=True)
    assert "Imported" in page and 'href="/acme/projects/WEB/issues"' in page
    assert _stored_files(app, acme) == []  # the upload is deleted once imported


def test_a_workers_writes_expire_the_warm_board_and_list(app, acme, migrated_env, redis_client):
    """Issues a worker imports show at once on warm cached pages: its rows move the versions too."""
    grace = _client(app, "grace@example.com")
    for url in ("/acme/projects/WEB/issues", "/acme/projects/WEB/board"):
        grace.get(url)
        assert "Plan the roadmap" not in grace.get(url).get_data(as_text=True)  # warm
    projects_version = f"{app.config['CACHE_KEY_PREFIX']}t:{acme}:version:projects"
    before = int(redis_client.get(projects_version) or 0)
    _import(app, migrated_env, _client(app), GOOD_CSV)
    for url in ("/acme/projects/WEB/issues", "/acme/projects/WEB/board"):
        assert "Plan the roadmap" in grace.get(url).get_data(as_text=True), url
    # Only the ORM's session events move this one (the project's issue counter was written).
    assert int(redis_client.get(projects_version) or 0) > before


MIXED_CSV = (
    "Title,State,Assignees,Labels,Due,Estimate,Description\n"
    "Good one,Todo,,,,,\n"
    'Multi-line,Todo,,,,,"first\nsecond\nthird"\n'
    "Doing it,Doing,,,,,\n"
    "Stranger,,x@y.example,,,,\n"
    ",,,,,,no title\n"
    "Odd values,,,nolabel,31/12/2026,lots,\n"
    "Good two,backlog,Grace Hopper,,,,\n"
)


def _problems(app, org_id, task_id) -> list[tuple[int, bool, str]]:
    """The task's rows with problems as ``(line, rejected, reasons)``, in file order."""
    from app.models import ImportProblem

    with app.app_context(), tenant_context(org_id):
        rows = db.session.scalars(
            select(ImportProblem)
            .where(ImportProblem.task_id == uuid.UUID(task_id))
            .order_by(ImportProblem.line)
        ).all()
        return [(row.line, row.rejected, "; ".join(reason for _, _, reason in row.problems)) for row in rows]


def test_bad_rows_are_reported_by_line_while_good_rows_import(app, acme, migrated_env):
    """Strict mode: each bad row is listed with its line in the file and every reason; the others import."""
    status = _import(app, migrated_env, _client(app), MIXED_CSV, strict=True)
    counts = status["counts"]
    assert (counts["rows"], counts["imported"], counts["rejected"]) == (7, 3, 4)
    assert status["result"]["strict"] is True
    assert _problems(app, acme, status["id"]) == [
        (6, True, "state 'Doing' is not one of Backlog, Todo, In progress, In review, Done, Cancelled"),
        (7, True, "assignee 'x@y.example' is not a member of this organization"),
        (8, True, "the title is empty"),
        (
            9,
            True,
            "label 'nolabel' does not exist (create it first); due date '31/12/2026' is not a date like "
            "2026-12-31; estimate 'lots' is not a whole number from 0 to 1000",
        ),
    ]
    assert [i.title for i in _issues(app, acme)] == ["Good one", "Multi-line", "Good two"]
    page = _client(app).get(f"/acme/tasks/{status['id']}").get_data(as_text=True)
    assert "assignee &#39;x@y.example&#39; is not a member" in page and "<td>7</td>" in page


def test_importing_the_same_file_again_creates_nothing(app, acme, migrated_env):
    """A second import of the same rows counts them as already imported and creates no issue."""
    client = _client(app)
    assert _import(app, migrated_env, client, GOOD_CSV)["counts"]["imported"] == 3
    again = _import(app, migrated_env, client, GOOD_CSV)["counts"]
    assert (again["imported"], again["duplicates"]) == (0, 3)
    assert len(_issues(app, acme)) == 3
    with_id = "ID,Title\nA-1,First\nA-2,Second\n"
    assert _import(app, migrated_env, client, with_id)["counts"]["imported"] == 2
    edited_file = "ID,Title\nA-1,First (edited elsewhere)\nA-3,Third\n"
    edited = _import(app, migrated_env, client, edited_file)["counts"]
    assert (edited["imported"], edited["duplicates"]) == (1, 1)
    assert [i.number for i in _issues(app, acme)] == [1, 2, 3, 4, 5, 6]


def test_a_job_run_again_after_dying_midway_does_not_duplicate(app, acme, migrated_env, tmp_path):
    """A job whose worker is killed mid-way keeps its committed batches; run again, it finishes the rest."""
    from app.imports.jobs import import_issues

    rows = 8000  # 16 batches: the test sees the first one long before the last is written
    content = "Title,Estimate\n" + "".join(f"Issue number {n},{n % 10}\n" for n in range(rows))
    client = _client(app)
    page = _upload(client, content).get_data(as_text=True)
    token = _upload_token(page)
    with app.app_context(), tenant_context(acme):
        from app.core.queue.queues import enqueue

        olive = db.session.scalar(select(User.id).where(User.email == "owner@example.com"))
        project_id = str(db.session.scalar(select(Project.id)))
        task = Task(kind="import", description="Import", created_by_id=olive)
        db.session.add(task)
        db.session.commit()
        task_id = str(task.id)
        args = (task_id, project_id, token, ["title", "estimate"], rows)
        enqueue("app.imports.jobs.import_issues", *args, job_id=task_id)
    worker = WorkerProcess(migrated_env, tmp_path / "worker.log")
    try:
        # Killed as soon as the first batch is committed, as a lost machine would be.
        wait_for(lambda: _issue_count(app, acme) >= 500, 120, "the first batch was never committed", 0.01)
    finally:
        worker.kill()
    partial = _issue_count(app, acme)
    assert 0 < partial < rows, "the job was meant to be stopped mid-way"
    assert partial % 500 == 0  # whole batches were committed, nothing of the one cut short
    with app.app_context(), tenant_context(acme):
        assert Task.get_scoped(db.session, uuid.UUID(task_id)).status == Task.STARTED
        result = import_issues(*args)  # what the retry runs
        assert import_issues(*args) == result  # a finished task is not run again
    counts = result["counts"]
    assert (counts["rows"], counts["imported"], counts["duplicates"]) == (rows, rows, 0)
    issues = _issues(app, acme)
    assert len(issues) == rows and [i.number for i in issues] == list(range(1, rows + 1))


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"", "empty.csv", "The file is empty."),
        (b"Title,State\n", "header.csv", "no rows to import"),
        ("Title\nCaf\u00e9\n".encode("latin-1"), "latin.csv", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "picture.csv", "not a CSV file"),
        (b"Title\n" + b"x" * (10 * 1024 * 1024), "huge.csv", "larger than 10 MB"),
    ],
)
def test_unusable_uploads_get_a_form_error_and_store_nothing(app, acme, content, filename, message):
    """Empty, header-only, non-UTF-8, binary and oversized files are refused with a reason (422)."""
    response = _upload(_client(app), content, filename)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _stored_files(app, acme) == []


def test_viewers_cannot_import(app, acme):
    """A viewer gets 403 on the import pages and sees no Import link."""
    viewer = _client(app, "vic@example.com")
    assert viewer.get(IMPORT_URL).status_code == 403
    token = csrf_token_from(viewer.get("/acme/").get_data(as_text=True))
    assert viewer.post(f"{IMPORT_URL}/start", data={"csrf_token": token}).status_code == 403
    assert "/import" not in viewer.get("/acme/projects/WEB/issues").get_data(as_text=True)


def test_another_organization_cannot_use_the_upload_or_see_the_task(app, acme, migrated_env):
    """Another organization's member gets 404 for Acme's task; Acme's upload token means nothing to them."""
    client = _client(app)
    page = _upload(client, GOOD_CSV).get_data(as_text=True)
    with app.app_context():
        beta = make_org(make_user("bert@example.com", name="Bert"), "Beta", "beta")
        with tenant_context(beta.id):
            db.session.add(Project(key="WEB", name="Beta web"))
            db.session.commit()
    bert = _client(app, "bert@example.com")
    beta_page = bert.get("/beta/projects/WEB/import").get_data(as_text=True)
    response = bert.post(
        "/beta/projects/WEB/import/start",
        data={"csrf_token": csrf_token_from(beta_page), "upload": _upload_token(page), "column-0": "title"},
    )
    assert response.status_code == 422 and "no longer available" in response.get_data(as_text=True)
    task_url = _start(client, page).headers["Location"]
    assert bert.get(task_url.replace("/acme/", "/beta/")).status_code == 404
    assert bert.get(task_url).status_code == 404


# --- bad optional values: warnings, strict mode, rejected rows, paging, status -----------------


def test_a_bad_optional_value_is_left_out_with_a_warning(app, acme):
    """The checker keeps a row with a bad optional value, without it, and says which column and why;
    strict mode rejects it; a row without a title is rejected either way."""
    from app.imports.rows import Problem, RowChecker, RowProblem

    header = ["Summary", "Owner", "Tags", "Due", "Prio", "Points", "Status"]
    mapping = ["title", "assignees", "labels", "due_date", "priority", "estimate", "state"]
    cells = ["Fix it", "grace@example.com; nobody", "bug, nolabel", "31/12/2026", "meh", "lots", "Doing"]
    with app.app_context(), tenant_context(acme):
        row = RowChecker(mapping, header).check(2, cells)
        assert row.title == "Fix it" and len(row.assignee_ids) == 1 and len(row.label_ids) == 1
        # A state left out: the issue starts in the project's first unstarted state.
        assert (row.due_date, row.priority, row.estimate, row.state) == (None, 0, None, None)
        assert [(p.column, p.value) for p in row.warnings] == [
            ("Status", "Doing"),
            ("Prio", "meh"),
            ("Owner", "nobody"),
            ("Tags", "nolabel"),
            ("Due", "31/12/2026"),
            ("Points", "lots"),
        ]
        assert row.warnings[2] == Problem(
            "Owner", "nobody", "assignee 'nobody' is not a member of this organization"
        )
        with pytest.raises(RowProblem) as strict:
            RowChecker(mapping, header, strict=True).check(2, cells)
        assert len(strict.value.problems) == 6
        with pytest.raises(RowProblem) as untitled:
            RowChecker(mapping, header).check(3, ["", "nobody", "", "", "", "", ""])
        assert [p.reason for p in untitled.value.problems] == [
            "the title is empty",
            "assignee 'nobody' is not a member of this organization",
        ]


def _status_page(client, task_id, page=None) -> str:
    suffix = f"?page={page}" if page else ""
    return client.get(f"/acme/tasks/{task_id}{suffix}").get_data(as_text=True)


def test_rows_with_bad_optional_values_are_imported_with_warnings(app, acme, migrated_env):
    """Without strict mode only the row without a title is rejected; the others are imported without
    their bad values, each value listed as a warning, and the status says so."""
    client = _client(app)
    status = _import(app, migrated_env, client, MIXED_CSV)
    counts = status["counts"]
    assert (counts["rows"], counts["imported"], counts["imported_with_warnings"], counts["rejected"]) == (
        7,
        6,
        3,
        1,
    )
    assert counts["warnings"] == 5
    assert status["status"] == "finished"
    assert status["status_label"] == "Finished with 1 rejected row and 3 rows imported with warnings"
    assert [(line, rejected) for line, rejected, _ in _problems(app, acme, status["id"])] == [
        (6, False),
        (7, False),
        (8, True),
        (9, False),
    ]
    issues = {i.title: i for i in _issues(app, acme)}
    assert sorted(issues) == ["Doing it", "Good one", "Good two", "Multi-line", "Odd values", "Stranger"]
    assert issues["Doing it"].state == "todo" and issues["Stranger"].assignees == []
    odd = issues["Odd values"]
    assert (odd.labels, odd.due_date, odd.estimate) == ([], None, None)
    page = _status_page(client, status["id"])
    assert 'badge--warning">Finished with 1 rejected row and 3 rows imported with warnings' in page
    assert "badge--finished" not in page
    assert "<td>Assignees</td>" in page and "<td>x@y.example</td>" in page
    assert "imported without it" in page and "the title is empty" in page
    tasks_list = client.get("/acme/tasks").get_data(as_text=True)
    assert "Finished with 1 rejected row" in tasks_list


def test_a_clean_import_is_plainly_finished(app, acme, migrated_env):
    """An import with no rejected row and no warning is a green "Finished" and lists no problems."""
    client = _client(app)
    status = _import(app, migrated_env, client, GOOD_CSV)
    assert (status["status_label"], status["attention"]) == ("Finished", "")
    page = _status_page(client, status["id"])
    assert 'badge--finished">Finished</span>' in page
    assert "Rows with problems" not in page and "rejected.csv" not in page


def test_most_rows_with_one_bad_value_are_all_imported_and_the_warnings_paged(app, acme, migrated_env):
    """1,500 rows of which 1,064 name an unknown assignee: all are imported, 1,064 warnings, 100 a page."""
    lines = [
        f"Issue {n},{'nobody' + str(n) + '@example.com' if n % 1500 < 1064 else 'grace@example.com'}"
        for n in range(1500)
    ]
    client = _client(app)
    status = _import(app, migrated_env, client, "Title,Assignee\n" + "\n".join(lines) + "\n")
    counts = status["counts"]
    assert (counts["imported"], counts["imported_with_warnings"], counts["rejected"]) == (1500, 1064, 0)
    assert status["status_label"] == "Finished with 1,064 rows imported with warnings"
    assert _issue_count(app, acme) == 1500
    first = _status_page(client, status["id"])
    assert "Page 1 of 11" in first and "1,064 rows" in first and 'rel="next"' in first
    assert first.count("imported without it") == 100 and 'rel="prev"' not in first
    last = _status_page(client, status["id"], 11)
    assert "Page 11 of 11" in last and last.count("imported without it") == 64
    assert "nobody1063@example.com" in last and 'rel="next"' not in last


def test_every_rejected_row_is_paged_and_downloadable_as_csv(app, acme, migrated_env):
    """650 rejected rows (more than the 500 once listed): every one is on a page and in the CSV,
    with its original columns and the reasons."""
    rows = [f",Todo,note {n}" if n % 2 else f"Good {n},Todo,note {n}" for n in range(1300)]
    rows[1] = '",",Nope,"a ""quoted"", value"'  # a title of a comma: imported, bad state warned
    client = _client(app)
    status = _import(app, migrated_env, client, "Title,State,Notes\n" + "\n".join(rows) + "\n")
    assert (status["counts"]["rejected"], status["counts"]["imported_with_warnings"]) == (649, 1)
    assert status["status_label"] == "Finished with 649 rejected rows and 1 row imported with warnings"
    page7 = _status_page(client, status["id"], 7)
    assert "Page 7 of 7" in page7 and "<td>1301</td>" in page7  # the last row's line
    assert _status_page(client, status["id"], 99).count("Page 7 of 7")  # past the end: the last
    assert "Page 1 of 7" in _status_page(client, status["id"], "x")
    page = _status_page(client, status["id"])
    link = re.search(r'href="(/acme/imports/[0-9a-f-]+/rejected\.csv)"', page).group(1)
    response = client.get(link)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="issues-rejected.csv"' in response.headers["Content-Disposition"]
    import csv
    import io

    parsed = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert parsed[0] == ["Title", "State", "Notes", "Import problems"]
    assert len(parsed) == 1 + 649
    assert parsed[1] == ["", "Todo", "note 3", "the title is empty"]
    assert parsed[-1] == ["", "Todo", "note 1299", "the title is empty"]


def test_strict_rejected_rows_download_keeps_every_reason(app, acme, migrated_env):
    """In strict mode a row with bad optional values is rejected and its CSV line gives every reason."""
    client = _client(app)
    status = _import(app, migrated_env, client, MIXED_CSV, strict=True)
    assert status["status_label"] == "Finished with 4 rejected rows"
    response = client.get(f"/acme/imports/{status['id']}/rejected.csv")
    import csv
    import io

    parsed = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert [row[0] for row in parsed[1:]] == ["Doing it", "Stranger", "", "Odd values"]
    assert parsed[4][-1].startswith("label 'nolabel' does not exist (create it first); due date")
    assert parsed[4][:7] == ["Odd values", "", "", "nolabel", "31/12/2026", "lots", ""]


def test_the_preview_counts_what_the_import_will_do_in_the_chosen_mode(app, acme):
    """Before importing, the preview counts rows imported, imported with warnings and rejected; the
    counts follow the mode (ticked on the upload or the preview) and the mapping."""
    client = _client(app)
    page = _upload(client, MIXED_CSV).get_data(as_text=True)

    def counts(html):
        return [
            re.search(rf'id="outcome-{name}">([\d,]+)<', html).group(1)
            for name in ("imported", "warnings", "rejected")
        ]

    assert counts(page) == ["6", "3", "1"]
    assert "checked" not in re.search(r'<input[^>]*name="strict"[^>]*>', page).group(0)
    strict = _start(client, page, strict=True, action="check")
    assert strict.status_code == 200 and counts(strict.get_data(as_text=True)) == ["3", "0", "4"]
    assert "(strict mode)" in strict.get_data(as_text=True)
    no_state = _selected(page)
    no_state[1] = "ignore"
    assert counts(_start(client, page, no_state, action="check").get_data(as_text=True)) == ["6", "2", "1"]
    untitled = _start(client, page, ["ignore"] * 7, action="check").get_data(as_text=True)
    assert "Choose the column that holds the issues" in untitled and "outcome-imported" not in untitled
    ticked = _upload(client, MIXED_CSV, strict=True).get_data(as_text=True)
    assert counts(ticked) == ["3", "0", "4"] and "checked" in re.search(
        r'<input[^>]*name="strict"[^>]*>', ticked
    ).group(0)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Task)) == 0


def test_another_organization_cannot_download_the_rejected_rows(app, acme, migrated_env):
    """The rejected rows' file is the task's: another organization's member, or a member who did not
    start it, gets 404."""
    status = _import(app, migrated_env, _client(app), MIXED_CSV)
    url = f"/acme/imports/{status['id']}/rejected.csv"
    assert _client(app).get(url).status_code == 200  # the owner, who started it
    with app.app_context():
        make_org(make_user("bert@example.com", name="Bert"), "Beta", "beta")
        db.session.commit()
    bert = _client(app, "bert@example.com")
    assert bert.get(url).status_code == 404
    assert bert.get(url.replace("/acme/", "/beta/")).status_code == 404
    assert _client(app, "grace@example.com").get(url).status_code == 404
    assert _client(app).get(f"/acme/imports/{uuid.uuid4()}/rejected.csv").status_code == 404


def test_rows_with_problems_go_with_their_task(app, acme, migrated_env):
    """Deleting an old import task (the daily housekeeping) deletes its rows with problems too."""
    from datetime import timedelta

    from app.imports.problems import problem_page
    from app.models.base import utcnow
    from app.tasks.jobs import delete_old_tasks

    status = _import(app, migrated_env, _client(app), MIXED_CSV)
    task_id = uuid.UUID(status["id"])
    with app.app_context(), tenant_context(acme):
        assert problem_page(task_id, 1).total == 4
        Task.get_scoped(db.session, task_id).finished_at = utcnow() - timedelta(days=31)
        db.session.commit()
    with app.app_context():
        assert delete_old_tasks() == 1
    with app.app_context(), tenant_context(acme):
        assert problem_page(task_id, 1).total == 0
