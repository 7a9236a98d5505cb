"""An organization's overview (/<org>/): projects by state, my open work, the latest activity and
a new organization's first steps; right after each edit, in a fixed number of queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.core.dates import format_datetime, iso_utc
from app.core.tenancy import tenant_context
from app.extensions import cache as app_cache
from app.issues import services as issues
from app.models import Issue, IssueActivity, Project, User
from app.models.base import utcnow
from tests.accounts import login, post_form
from tests.factories import OWNER, make_acme, make_beta
from tests.support.statements import Statements

OVERVIEW = "/acme/"


def _page(client, url=OVERVIEW) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _state_count(html: str, key: str, state: str) -> int | None:
    """The count the overview shows for a project's state, from the link to its filtered list."""
    found = re.search(
        rf'href="/acme/projects/{key}/issues\?state={state}">[^<]*<span class="overview-count">(\d+)</span>',
        html,
    )
    return int(found.group(1)) if found else None


def _steps(html: str) -> dict[str, bool]:
    """The first steps shown, each with whether it is ticked."""
    return {
        step: "overview-step--done" in classes
        for classes, step in re.findall(r'<li class="(overview-step[^"]*)" data-step="(\w+)"', html)
    }


@pytest.fixture
def acme(db_session):
    """Acme with WEB and API, an archived OLD project, Grace (member) and Vic (viewer)."""
    acme = make_acme(
        {"grace@example.com": "member", "vic@example.com": "viewer"},
        projects={
            "WEB": "Website",
            "API": "Public API",
            "OLD": {"name": "Old site", "archived_at": utcnow()},
        },
    )
    grace = acme.people["grace@example.com"]
    for state, n in [("backlog", 1), ("todo", 3), ("in_progress", 2), ("done", 4), ("cancelled", 1)]:
        for i in range(n):
            acme.add_issue(f"Web {state} {i}", project="WEB", state=state)
    acme.add_issue("API review", project="API", state="in_review", assignee_ids=[grace.id])
    acme.add_issue("Grace urgent", project="API", state="todo", priority=4, assignee_ids=[grace.id])
    acme.add_issue("Grace finished", project="API", state="done", assignee_ids=[grace.id])
    db_session.commit()
    return acme.id


def test_counts_per_project_and_state_link_to_the_filtered_lists(client, acme):
    """Each active project shows its issues per state, each count a link to the list filtered by
    that state; archived projects are not listed."""
    login(client, "grace@example.com")
    html = _page(client)
    expected = {"backlog": 1, "todo": 3, "in_progress": 2, "in_review": 0, "done": 4, "cancelled": 1}
    assert {state: _state_count(html, "WEB", state) for state in expected} == expected
    assert _state_count(html, "API", "in_review") == 1 and _state_count(html, "API", "done") == 1
    assert ">6 open</a>" in html and ">2 open</a>" in html
    assert "Old site" not in html and "1 archived" in html
    listed = _page(client, "/acme/projects/WEB/issues?state=in_progress")
    assert "Web in_progress 0" in listed and "Web in_progress 1" in listed and "Web todo 0" not in listed
    open_link = re.search(
        r'href="(/acme/projects/WEB/issues\?state=backlog&amp;state=todo[^"]*)">6 open', html
    )
    assert open_link and "state=in_review" in open_link.group(1) and "state=done" not in open_link.group(1)


def test_my_open_work_lists_the_persons_open_issues(app, client, acme):
    """My open work shows the signed-in person's open assigned issues, most urgent first, and links
    to My work; closed ones and other people's are not there."""
    login(client, "grace@example.com")
    html = _page(client)
    mine = html[html.index('id="mine-h"') : html.index('id="activity-h"')]
    assert "Grace urgent" in mine and "API review" in mine
    assert mine.index("Grace urgent") < mine.index("API review")
    assert "Grace finished" not in mine and "Web todo 0" not in mine
    assert 'href="/acme/my-work"' in mine
    owner = app.test_client()
    login(owner, OWNER)
    owner_html = _page(owner)
    mine = owner_html[owner_html.index('id="mine-h"') : owner_html.index('id="activity-h"')]
    assert "Nothing open is assigned to you." in mine


def test_recent_activity_is_newest_first_with_who_what_which_and_when(client, db_session, acme):
    """The latest events (creations, moves, comments) newest first, each with the person, the issue
    and the time as a <time data-relative> (the exact UTC time, made relative by app.js)."""
    login(client, "grace@example.com")
    assert post_form(
        client, "/acme/issues/API-2", "/acme/issues/API-2/comments", body="On it today"
    ).status_code in (
        302,
        303,
    )
    grace = db_session.scalars(select(User).where(User.email == "grace@example.com")).one()
    with tenant_context(acme):
        issue = db_session.scalars(select(Issue).where(Issue.title == "API review")).one()
        issues.move_issue(issue, grace, "done")
        db_session.commit()
    html = _page(client)
    feed = html[html.index('id="activity-h"') :]
    events = re.findall(r'<li class="overview-event">(.*?)</li>', feed, re.S)
    assert len(events) == 15
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", event)).strip() for event in events]
    exact = r"\d{1,2} \w{3} \d{4} \d\d:\d\d UTC"
    assert re.match(rf"Grace Hopper moved API-1 API review to Done · {exact}", text[0]), text[0]
    assert re.match(rf"Grace Hopper commented on API-2 Grace urgent · {exact}", text[1])
    assert "On it today" in text[1]
    assert text[2].startswith("Olive Owner created API-3 Grace finished")
    assert re.search(
        rf'<time class="muted" datetime="[^"]+Z" data-relative title="{exact}">{exact}</time>',
        events[0],
    )
    assert 'href="/acme/issues/API-1"' in events[0]


def test_activity_says_how_long_ago(client, db_session, acme):
    """An older event carries its own time, from which app.js says how long ago it was (the
    words themselves: tests/test_browser_dates.py)."""
    at = (utcnow() - timedelta(hours=3)).replace(microsecond=0)
    with tenant_context(acme):
        db_session.execute(update(IssueActivity).values(created_at=at))
        db_session.commit()
    login(client, "grace@example.com")
    assert (
        f'<time class="muted" datetime="{iso_utc(at)}" data-relative title="{format_datetime(at)}">'
        in _page(client)
    )


def test_another_organizations_activity_never_appears(app, client, db_session, acme):
    """Beta's projects, issues and history are not on Acme's overview, nor Acme's on Beta's."""
    beta = make_beta(projects={"WEB": "Beta web"})
    beta.add_issue("Beta secret plan", project="WEB", state="in_progress")
    db_session.commit()
    login(client, "grace@example.com")
    html = _page(client)
    assert "Beta secret plan" not in html and "Beta web" not in html
    assert _state_count(html, "WEB", "in_progress") == 2
    bert = app.test_client()
    login(bert, "bert@example.com")
    beta_html = _page(bert, "/beta/")
    assert "Beta secret plan" in beta_html and "Web todo" not in beta_html and "Website" not in beta_html


def test_a_new_issue_shows_in_the_counts_and_activity_at_once(client, acme):
    """The overview is cached, and a new issue made through its form shows on the next view."""
    login(client, "grace@example.com")
    _page(client)
    assert _state_count(_page(client), "WEB", "in_review") == 0  # the cached copy
    created = post_form(
        client, "/acme/projects/WEB/issues/new", title="Fresh review", state="in_review", priority="0"
    )
    assert created.status_code == 303
    html = _page(client)
    assert _state_count(html, "WEB", "in_review") == 1
    assert "Fresh review" in html[html.index('id="activity-h"') :]


def test_the_cached_overview_runs_only_the_persons_own_query(app, client, acme):
    """Viewed again with nothing changed, the overview reads only the person's open work."""
    login(client, "grace@example.com")
    _page(client)
    with Statements(app) as statements:
        _page(client)
    assert len(statements.sent) == 1 and "issue_assignees" in statements.sent[0]


def _with_issues(team, projects: int) -> None:
    for n in range(projects):
        team.add_issue(f"Issue {n}", project=f"P{n}", state="todo", assignee_ids=[team.owner.id])
        team.add_issue(f"Done {n}", project=f"P{n}", state="done")


def _cold_overview_statements(app, slug: str, email: str, projects: int) -> int:
    client = app.test_client()
    login(client, email)
    with app.app_context():
        app_cache.clear()
    with Statements(app) as statements:
        html = _page(client, f"/{slug}/")
    assert re.search(rf'href="/{slug}/projects/P{projects - 1}/issues\?state=todo">Todo <span', html)
    assert html.count("overview-project__head") == projects
    return len(statements.sent)


def test_the_statements_do_not_grow_with_the_projects(app, db_session):
    """A cold overview runs as many statements for 12 projects as for 2: grouped counts, not a
    query per project."""
    _with_issues(make_acme(projects={f"P{n}": f"Project {n}" for n in range(2)}), 2)
    _with_issues(make_beta(projects={f"P{n}": f"Project {n}" for n in range(12)}), 12)
    db_session.commit()
    for_few = _cold_overview_statements(app, "acme", OWNER, 2)
    for_many = _cold_overview_statements(app, "beta", "bert@example.com", 12)
    assert for_few == for_many and for_many <= 12, (for_few, for_many)


def test_a_new_organization_shows_its_owner_the_first_steps(client, db_session):
    """An owner of an organization with no project sees the three steps, none ticked, each a link
    to the page that does it (importing once a project exists)."""
    make_acme(projects=())
    db_session.commit()
    login(client, OWNER)
    html = _page(client)
    assert _steps(html) == {"project": False, "invite": False, "import": False}
    assert 'href="/acme/projects/new">Create a project</a>' in html
    assert 'href="/acme/members#invite">Invite people</a>' in html
    assert "once a project exists" in html


def test_a_viewer_is_not_shown_the_first_steps(client, db_session):
    """A viewer of a new organization may do none of the steps: no checklist, and no link to
    create a project."""
    make_acme({"vic@example.com": "viewer"}, projects=())
    db_session.commit()
    login(client, "vic@example.com")
    html = _page(client)
    assert _steps(html) == {} and "Set up Acme" not in html
    assert "No active project yet." in html and "/acme/projects/new" not in html


def test_a_member_is_shown_only_the_step_they_may_do(client, db_session):
    """A member of a new organization sees the import step only."""
    make_acme({"max@example.com": "member"}, projects=("WEB",))
    db_session.commit()
    login(client, "max@example.com")
    html = _page(client)
    assert _steps(html) == {"import": False}
    assert 'href="/acme/projects/WEB/import">Import issues from a CSV</a>' in html


def test_the_steps_are_ticked_as_they_are_done(client, db_session):
    """Creating a project, inviting someone and importing tick their steps at once; with all done
    the checklist goes."""
    acme = make_acme(projects=())
    db_session.commit()
    acme_id, owner_id = acme.id, acme.owner.id
    login(client, OWNER)
    assert _steps(_page(client)) == {"project": False, "invite": False, "import": False}
    made = post_form(client, "/acme/projects/new", name="Website", key="WEB", description="")
    assert made.status_code == 303
    html = _page(client)
    assert _steps(html) == {"project": True, "invite": False, "import": False}
    assert 'href="/acme/projects/WEB/import">Import issues from a CSV</a>' in html
    invited = post_form(client, "/acme/members", "/acme/invitations", email="new@example.com", role="member")
    assert invited.status_code == 303
    assert _steps(_page(client)) == {"project": True, "invite": True, "import": False}
    with tenant_context(acme_id):
        project = db_session.scalars(select(Project)).one()
        issue = issues.create_issue(project, db_session.get(User, owner_id), "Imported")
        issue.import_key = "a" * 64
        db_session.commit()
    html = _page(client)
    assert _steps(html) == {} and "Set up Acme" not in html
