"""Reports: exact numbers for a known history, SVG charts with their tables and CSV, computed by workers."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.core.queue.queues import DEFAULT, queued_jobs
from app.core.security import spreadsheet_safe
from app.core.tenancy import tenant_context
from app.extensions import db
from app.issues import services as issues
from app.models import Issue, IssueActivity, Project, ReportSnapshot, Task, User
from app.models.base import utcnow
from app.models.work import DONE, IN_PROGRESS, IN_REVIEW, TODO
from app.reports import queries
from app.reports.services import current_data_version, store_snapshot
from tests.accounts import add_member, browser_login, login, make_org, make_user
from tests.conftest import csrf_token_from, run_flask
from tests.factories import make_acme, make_beta
from tests.support.statements import Statements

SVG = re.compile(r"<svg\b.*?</svg>", re.S)
NS = "{http://www.w3.org/2000/svg}"


def _monday() -> date:
    return queries.week_monday(utcnow().date())


def _when(week: int, days: float = 0, hours: int = 0) -> datetime:
    """A moment in window week ``week`` (0 = the oldest of the 12, 11 = this week)."""
    start = _monday() - timedelta(weeks=11 - week)
    return datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=days, hours=hours)


def _user(email) -> User:
    return db.session.scalars(select(User).where(User.email == email)).one()


def _issue(project, title, created, moves=(), state=TODO, assignees=()):
    """Create an issue through the services, then date its creation and each state move."""
    owner = _user("owner@example.com")
    issue = issues.create_issue(project, owner, title, state=state, assignee_ids=[a.id for a in assignees])
    issue.created_at = created
    for activity in db.session.scalars(select(IssueActivity).where(IssueActivity.issue_id == issue.id)):
        activity.created_at = created
    for new_state, at in moves:
        issues.move_issue(issue, owner, new_state)
        for activity in [o for o in db.session.new if isinstance(o, IssueActivity)]:
            activity.created_at = at
        if new_state == DONE:
            issue.closed_at = at
        db.session.flush()
    return issue


def _history(org_id):
    """The known dataset of WEB (and one issue of API); see the expectations in the tests."""
    with tenant_context(org_id):
        web = db.session.scalars(select(Project).where(Project.key == "WEB")).one()
        api = db.session.scalars(select(Project).where(Project.key == "API")).one()
        grace, olive = _user("grace@example.com"), _user("owner@example.com")
        # Done within the window, one per cycle-time bucket.
        _issue(web, "A", _when(0, hours=9), [(IN_PROGRESS, _when(0, 1, 9)), (DONE, _when(0, 1, 21))])  # 0.5 d
        _issue(web, "B", _when(0, hours=9), [(IN_PROGRESS, _when(2, 0, 9)), (DONE, _when(2, 1, 21))])  # 1.5 d
        _issue(web, "C", _when(1), [(DONE, _when(1, 3))])  # never started: 3 d from creation
        _issue(web, "D", _when(3), [(IN_PROGRESS, _when(3)), (DONE, _when(3, 5))])  # 5 d
        _issue(  # started, stopped, started again: 10 d from the first start
            web,
            "E",
            _when(2),
            [(IN_PROGRESS, _when(4)), (TODO, _when(4, 1)), (IN_PROGRESS, _when(5)), (DONE, _when(5, 3))],
        )
        _issue(web, "F", _when(0), [(IN_PROGRESS, _when(6)), (DONE, _when(9))])  # 21 d
        _issue(web, "G", _when(-9), [(IN_PROGRESS, _when(-2, 4)), (DONE, _when(11, 0, 12))])  # 87.5 d
        # Done before the window; done then reopened; open; cancelled.
        _issue(web, "H", _when(-3), [(DONE, _when(-2))])
        _issue(web, "M", _when(1), [(IN_PROGRESS, _when(1)), (DONE, _when(2)), (IN_REVIEW, _when(3))])
        _issue(web, "I", _when(4), assignees=[grace])
        _issue(web, "J", _when(5), [(IN_PROGRESS, _when(6))], assignees=[grace, olive])
        _issue(web, "K", _when(7), state="backlog")
        _issue(web, "L", _when(8), [("cancelled", _when(8, 1))])
        _issue(api, "N", _when(5), [(DONE, _when(5, 2))])  # 2 d, another project
        db.session.commit()


@pytest.fixture
def acme(db_session):
    """Acme (owner Olive, member Grace, viewer Vic) with projects WEB and API, and Beta with its own WEB."""
    acme = make_acme({"grace@example.com": "member", "vic@example.com": "viewer"}, projects=("WEB", "API"))
    beta = make_beta(projects={"WEB": "Beta web"})
    for n in range(3):  # another tenant's done issues: never counted in Acme's reports
        beta.add_issue(f"Beta {n}", state=DONE)
    db_session.commit()
    return acme.ref


def _web_id(org_id):
    return db.session.scalars(select(Project.id).where(Project.key == "WEB")).one()


def test_project_reports_are_exact_for_a_known_history(acme):
    """Throughput, cycle time (buckets, median, 85th percentile), burn-up and open issues of a project."""
    _history(acme.id)
    with tenant_context(acme.id):
        data = queries.compute(_web_id(acme.id), _monday())
    assert [w["done"] for w in data["throughput"]] == [1, 1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 1]
    assert data["throughput"][11]["start"] == _monday().isoformat()
    assert data["throughput"][11]["week"] == "{}-W{:02d}".format(*_monday().isocalendar()[:2])
    cycle = data["cycle_time"]
    assert [b["count"] for b in cycle["buckets"]] == [1, 1, 1, 1, 1, 1, 1]
    assert cycle["count"] == 7 and cycle["median_days"] == 5.0 and cycle["p85_days"] == 21.0
    assert [w["created"] for w in data["burnup"]] == [5, 7, 8, 9, 10, 11, 11, 12, 13, 13, 13, 13]
    assert [w["done"] for w in data["burnup"]] == [2, 3, 4, 5, 5, 6, 6, 6, 6, 7, 7, 8]
    assert {s["label"]: s["count"] for s in data["open_by_state"]} == {
        "Backlog": 1,
        "Todo": 1,
        "In progress": 1,
        "In review": 1,
    }
    assert [(a["name"], a["count"]) for a in data["open_by_assignee"]] == [
        ("Grace Hopper", 2),
        ("Olive Owner", 1),
        ("Unassigned", 2),
    ]


def test_organization_reports_add_up_every_project(acme):
    """The organization's reports count every project's issues, and no other organization's."""
    _history(acme.id)
    with tenant_context(acme.id):
        data = queries.compute(None, _monday())
    assert [w["done"] for w in data["throughput"]] == [1, 1, 1, 1, 0, 2, 0, 0, 0, 1, 0, 1]
    assert [b["count"] for b in data["cycle_time"]["buckets"]] == [1, 1, 2, 1, 1, 1, 1]
    # 0.5, 1.5, 2 (API), 3, 5, 10, 21, 87.5 days: ranks 4 and 7 of 8.
    assert data["cycle_time"]["median_days"] == 3.0 and data["cycle_time"]["p85_days"] == 21.0
    assert (data["burnup"][-1]["created"], data["burnup"][-1]["done"]) == (14, 9)


def test_empty_reports_have_no_percentiles(acme):
    """A project without issues has zero counts everywhere and no median."""
    with tenant_context(acme.id):
        data = queries.compute(_web_id(acme.id), _monday())
    assert all(w["done"] == 0 for w in data["throughput"])
    assert data["cycle_time"]["median_days"] is None and data["cycle_time"]["p85_days"] is None
    assert data["open_by_assignee"] == [{"name": "Unassigned", "user_id": None, "count": 0}]


def _fresh_snapshot(org_id, project_key="WEB"):
    """Store the scope's snapshot for the current data, as the worker's job does."""
    with tenant_context(org_id):
        project_id = _web_id(org_id) if project_key else None
        version, week_start = current_data_version()
        store_snapshot(project_id, version, utcnow(), queries.compute(project_id, week_start))
        db.session.commit()


def _reads_issues(statement: str) -> bool:
    return bool(re.search(r"\b(issues|issue_activities|issue_assignees)\b", statement))


def test_the_page_shows_charts_from_the_snapshot_without_aggregating(app, client, acme):
    """A current snapshot is shown as it is: a few queries, none of them reading issues."""
    _history(acme.id)
    _fresh_snapshot(acme.id)
    login(client, "owner@example.com")
    with Statements(app) as statements:
        page = client.get("/acme/projects/WEB/reports")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert not [s for s in statements.sent if _reads_issues(s)], statements.sent
    selects = [s for s in statements.sent if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 4, selects  # the project, the snapshot, the layout's unread count
    assert "hx-trigger" not in html and "Updating" not in html
    with tenant_context(acme.id):
        assert db.session.scalar(select(Task.id)) is None  # nothing to compute


def test_svg_charts_are_well_formed_and_labelled(client, acme):
    """Each of the five charts is valid SVG with role=img, a title and a description it is labelled by."""
    _history(acme.id)
    _fresh_snapshot(acme.id)
    login(client, "owner@example.com")
    html = client.get("/acme/projects/WEB/reports").get_data(as_text=True)
    svgs = SVG.findall(html)
    assert len(svgs) == 5
    for markup in svgs:
        svg = ET.fromstring(markup)
        assert svg.get("role") == "img"
        title, desc = svg.find(f"{NS}title"), svg.find(f"{NS}desc")
        assert title is not None and title.text and desc is not None and desc.text
        assert svg.get("aria-labelledby").split() == [title.get("id"), desc.get("id")]
        assert len(svg.findall(f".//{NS}text")) >= 3  # axis labels and values
    assert "median 5 days, 85th percentile 21 days" in html
    assert html.count('<details class="report__data">') == 5


def _csv_rows(client, url) -> list[list[str]]:
    return list(csv.reader(io.StringIO(client.get(url).get_data(as_text=True))))


def test_csv_downloads_match_the_charts(client, acme):
    """Each chart's CSV holds the numbers of its table, with a clear file name."""
    _history(acme.id)
    _fresh_snapshot(acme.id)
    login(client, "vic@example.com")  # viewers read reports
    response = client.get("/acme/projects/WEB/reports/throughput.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert re.fullmatch(
        r'attachment; filename="acme-web-throughput-\d{4}-\d\d-\d\d\.csv"',
        response.headers["Content-Disposition"],
    )
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["Week", "Week starting", "Issues done"]
    assert [int(r[2]) for r in rows[1:]] == [1, 1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 1]
    expected = {
        "cycle-time": [["< 1 day", "1"], ["1-2 days", "1"], ["2-4 days", "1"]],
        "open-by-state": [["Backlog", "1"], ["Todo", "1"], ["In progress", "1"]],
        "open-by-assignee": [["Grace Hopper", "2"], ["Olive Owner", "1"], ["Unassigned", "2"]],
    }
    for chart, first_rows in expected.items():
        rows = _csv_rows(client, f"/acme/projects/WEB/reports/{chart}.csv")
        assert rows[1 : 1 + len(first_rows)] == first_rows, chart
    burnup = _csv_rows(client, "/acme/projects/WEB/reports/burn-up.csv")
    assert burnup[-1][2:] == ["13", "8"]
    assert client.get("/acme/projects/WEB/reports/nonsense.csv").status_code == 404


def test_csv_cells_cannot_run_as_formulas():
    """Text cells starting with = + - @ are written with a leading quote; numbers are not."""
    assert [spreadsheet_safe(v) for v in ("=1+2", "+1", "-1", "@SUM(A1)", "Ann", 3)] == [
        "'=1+2",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "Ann",
        "3",
    ]


def test_first_visit_shows_progress_and_queues_the_computation_once(app, client, redis_client, acme):
    """Without a snapshot the page shows a progress bar and polls; reloads queue nothing more."""
    login(client, "grace@example.com")
    first = client.get("/acme/projects/WEB/reports").get_data(as_text=True)
    assert "<progress" in first and 'hx-trigger="every 1s"' in first
    client.get("/acme/projects/WEB/reports")
    status = client.get("/acme/projects/WEB/reports/status")
    assert status.status_code == 200 and "<progress" in status.get_data(as_text=True)
    with tenant_context(acme.id):
        tasks = db.session.scalars(select(Task)).all()
    assert [t.kind for t in tasks] == ["report"]
    jobs = [
        j for j in queued_jobs(DEFAULT, redis_client) if j.func_name == "app.reports.jobs.compute_reports"
    ]
    assert [j.id for j in jobs] == [str(tasks[0].id)]
    assert client.get("/acme/reports/throughput.csv").status_code == 409


def test_another_organizations_project_is_not_found(client, acme):
    """Beta's project key under Acme, and Beta's reports, answer 404 to a member of Acme."""
    login(client, "grace@example.com")
    assert client.get("/acme/projects/NOPE/reports").status_code == 404
    assert client.get("/beta/reports").status_code == 404
    assert client.get("/beta/projects/WEB/reports/throughput.csv").status_code == 404


@pytest.mark.processes
def test_a_worker_computes_and_a_change_recomputes(app, committed_db, migrated_env):
    """A real worker fills the page; after an edit it shows the old charts as updating, then new numbers."""
    with app.app_context():
        owner = make_user("owner@example.com", name="Olive Owner")
        org = make_org(owner, "Acme", "acme")
        add_member(org, make_user("vic@example.com", name="Vic Viewer"), "viewer")
        with tenant_context(org.id):
            project = Project(key="WEB", name="Website")
            db.session.add(project)
            db.session.flush()
            issues.create_issue(project, owner, "First")
            issues.create_issue(project, owner, "Second", state=DONE)
        db.session.commit()
        org_id, owner_id = org.id, owner.id
    client = app.test_client()
    login(client, "vic@example.com")
    assert "<progress" in client.get("/acme/projects/WEB/reports").get_data(as_text=True)
    worker = run_flask(migrated_env, "worker", "--burst")
    assert worker.returncode == 0, worker.stderr
    status = client.get("/acme/projects/WEB/reports/status")
    assert status.headers["HX-Retarget"] == "#report-panel"
    html = client.get("/acme/projects/WEB/reports").get_data(as_text=True)
    assert "Todo 1" in html and "hx-trigger" not in html
    with app.app_context(), tenant_context(org_id):
        project = db.session.scalars(select(Project)).one()
        project_id = project.id
        issues.create_issue(project, db.session.get(User, owner_id), "Third")
        db.session.commit()
    updating = client.get("/acme/projects/WEB/reports").get_data(as_text=True)
    assert "Updating…" in updating and "Todo 1" in updating and 'hx-trigger="every 1s"' in updating
    worker = run_flask(migrated_env, "worker", "--burst")
    assert worker.returncode == 0, worker.stderr
    html = client.get("/acme/projects/WEB/reports").get_data(as_text=True)
    assert "Todo 2" in html and "Updating…" not in html
    with app.app_context(), tenant_context(org_id):
        tasks = db.session.scalars(select(Task).where(Task.kind == "report")).all()
        assert [t.status for t in tasks] == ["finished", "finished"]
        task_id = tasks[0].id
        assert db.session.scalar(select(ReportSnapshot.scope)) == f"project:{project_id}"
        assert db.session.scalar(select(Issue.id).where(Issue.title == "Third")) is not None
    task_page = client.get(f"/acme/tasks/{task_id}").get_data(as_text=True)
    assert "Reports for Website (WEB)" in task_page and "See the reports" in task_page


def test_organization_page_and_csv(client, acme):
    """The organization's reports page draws every project's numbers and offers them as CSV."""
    _history(acme.id)
    _fresh_snapshot(acme.id, project_key=None)
    login(client, "grace@example.com")
    html = client.get("/acme/reports").get_data(as_text=True)
    assert len(SVG.findall(html)) == 5 and 'aria-current="page">Reports' in html
    rows = _csv_rows(client, "/acme/reports/throughput.csv")
    assert [int(r[2]) for r in rows[1:]] == [1, 1, 1, 1, 0, 2, 0, 0, 0, 1, 0, 1]
    disposition = client.get("/acme/reports/burn-up.csv").headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="acme-burn-up-')


def test_a_failed_computation_can_be_tried_again(client, redis_client, acme):
    """When the computation failed the page says why and offers to try again, which queues a new attempt."""
    login(client, "grace@example.com")
    client.get("/acme/projects/WEB/reports")
    with tenant_context(acme.id):
        task = db.session.scalars(select(Task)).one()
        task.mark_failed("The database was unreachable.")
        db.session.commit()
    html = client.get("/acme/projects/WEB/reports").get_data(as_text=True)
    assert "The database was unreachable." in html and "Try again" in html and "hx-trigger" not in html
    response = client.post("/acme/projects/WEB/reports/retry", data={"csrf_token": csrf_token_from(html)})
    assert response.status_code == 303
    with tenant_context(acme.id):
        statuses = sorted(t.status for t in db.session.scalars(select(Task)))
    assert statuses == ["failed", "queued"]
    jobs = [
        j for j in queued_jobs(DEFAULT, redis_client) if j.func_name == "app.reports.jobs.compute_reports"
    ]
    assert len(jobs) == 2  # the first attempt's job (left to its fate) and the new one
    assert "<progress" in client.get("/acme/projects/WEB/reports").get_data(as_text=True)


def test_a_computation_that_left_no_current_snapshot_is_followed_by_another(client, acme):
    """If a finished computation's snapshot was overtaken, the next page load starts a new attempt."""
    login(client, "grace@example.com")
    client.get("/acme/projects/WEB/reports")
    with tenant_context(acme.id):
        db.session.scalars(select(Task)).one().mark_finished({})
        db.session.commit()
    assert "<progress" in client.get("/acme/projects/WEB/reports").get_data(as_text=True)
    with tenant_context(acme.id):
        assert sorted(t.status for t in db.session.scalars(select(Task))) == ["finished", "queued"]


@pytest.mark.browser
@pytest.mark.processes
def test_the_page_fills_in_when_the_worker_is_done(page, app, live_server, migrated_env):
    """In a browser: Reports shows a progress bar, and the charts appear by themselves once computed."""
    with app.app_context():
        make_acme().add_issue("First", state=DONE)
        db.session.commit()
    browser_login(page, live_server, "owner@example.com")
    page.get_by_role("link", name="Reports", exact=True).click()
    page.locator("progress#report-progress").wait_for()
    worker = run_flask(migrated_env, "worker", "--burst")
    assert worker.returncode == 0, worker.stderr
    page.get_by_role("img", name="Throughput per week").wait_for(timeout=15_000)
    assert page.locator("svg[role=img]").count() == 5
    assert page.locator("progress").count() == 0
    assert page.problems == []
