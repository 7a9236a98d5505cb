"""Plans and quotas: each limit refuses creation past it with the plan's message and nothing
made, whatever path asks (forms, imports, invitations and their acceptance, restores); usage for
admins; operators put an organization on a plan, audited, a downgrade warning and blocking only
what is new."""

from __future__ import annotations

import dataclasses
import re
import threading
import time

import pytest
from sqlalchemy import func, select, update

from app.core.storage import tenant_bytes
from app.core.tenancy import tenant_context
from app.extensions import db
from app.imports import services as imports
from app.models import AuditEvent, Invitation, Issue, Membership, Organization, Project, User
from app.orgs.services import create_organization
from app.plans import api_requests_per_minute, catalog, quotas
from app.projects import services as projects
from tests.accounts import login, make_user, post_form, sent_mails
from tests.factories import make_acme
from tests.test_imports import _start, _upload

PROJECTS_REFUSED = (
    "Your plan (Free) includes 3 active projects. Ask an owner to change the plan, or archive a project."
)


def _on_plan(org_id, name: str) -> None:
    """Put the organization on the plan ``name`` (committed: requests end the test's session)."""
    db.session.execute(update(Organization).where(Organization.id == org_id).values(plan=name))
    db.session.commit()


@pytest.fixture
def small_free_plan(monkeypatch):
    """Free, with room for 3 issues (its 1,000 would make slow tests)."""
    monkeypatch.setitem(catalog.PLANS, "free", dataclasses.replace(catalog.FREE, issues=3))


def _acme_id():
    return db.session.scalar(select(Organization.id).where(Organization.slug == "acme"))


def _owner_id():
    return db.session.scalar(select(User.id).where(User.email == "owner@example.com"))


def _invite(client, email: str):
    """The members page's invitation form, as rendered, for ``email`` as a member."""
    return post_form(client, "/acme/members", "/acme/invitations", email=email, role="member")


def _count(org_id, model) -> int:
    with tenant_context(org_id):
        return db.session.scalar(select(func.count()).select_from(model))


def _owner(app):
    client = app.test_client()
    login(client, "owner@example.com")
    return client


def test_the_plans_and_their_api_rates(app, db_session):
    """Free, Team and Business as declared; the API rate a plan allows is read for an organization."""
    assert [(p.name, p.members, p.projects, p.issues) for p in catalog.PLANS.values()] == [
        ("free", 5, 3, 1_000),
        ("team", 50, 50, 50_000),
        ("business", None, None, None),
    ]
    acme = make_acme()
    assert acme.org.plan == "business"  # the testing DEFAULT_PLAN
    assert api_requests_per_minute(acme.org) == 3_000
    acme.org.plan = "free"
    assert api_requests_per_minute(acme.org) == 60


def test_new_organizations_start_on_the_default_plan(app, db_session, monkeypatch):
    """DEFAULT_PLAN names the plan of a new organization (sign-up, the new-organization form)."""
    owner = make_user("owner@example.com")
    db.session.commit()
    for plan in ("free", "team"):
        monkeypatch.setitem(app.config, "DEFAULT_PLAN", plan)
        with app.app_context():
            assert create_organization(owner, f"On {plan}").plan == plan


def test_the_fourth_project_of_a_plan_of_three_is_refused(app, db_session):
    """The new-project form as rendered answers the plan's message and creates nothing; archiving a
    project frees its place, and making it active again is refused while the plan is full."""
    make_acme(projects=("WEB", "API"))
    _on_plan(_acme_id(), "free")
    owner = _owner(app)
    assert post_form(owner, "/acme/projects/new", name="Operations", key="OPS").status_code == 303
    refused = post_form(owner, "/acme/projects/new", name="Mobile", key="MOB")
    assert refused.status_code == 422
    assert PROJECTS_REFUSED in refused.text
    assert 'value="Mobile"' in refused.text  # what was typed is kept
    assert _count(_acme_id(), Project) == 3

    assert post_form(owner, "/acme/projects/API/archive").status_code == 303
    assert post_form(owner, "/acme/projects/new", name="Mobile", key="MOB").status_code == 303
    assert _count(_acme_id(), Project) == 4
    unarchive = post_form(owner, "/acme/projects/API/settings", "/acme/projects/API/archive", archived="0")
    assert unarchive.status_code == 303
    assert PROJECTS_REFUSED in owner.get(unarchive.headers["Location"]).text
    with tenant_context(_acme_id()):
        assert db.session.scalar(select(Project.archived_at).where(Project.key == "API")) is not None


def test_an_issue_past_the_plan_is_refused_on_the_form(app, db_session, small_free_plan):
    """The new-issue form answers the plan's message, with no issue made and no number taken."""
    acme = make_acme()
    for title in ("One", "Two", "Three"):
        acme.add_issue(title)
    _on_plan(_acme_id(), "free")
    refused = post_form(
        _owner(app), "/acme/projects/WEB/issues/new", title="Four", state="todo", priority="0"
    )
    assert refused.status_code == 422
    assert "Your plan (Free) includes 3 issues. Ask an owner to change the plan." in refused.text
    assert _count(_acme_id(), Issue) == 3
    with tenant_context(_acme_id()):
        assert db.session.scalar(select(Project.issue_counter).where(Project.key == "WEB")) == 3


def test_an_import_past_the_plan_is_refused_before_anything_is_written(app, db_session, small_free_plan):
    """Confirming the preview of a file with more rows than the plan has room for is refused with
    the reason: no issue, no task queued; a batch the job meets past the limit writes nothing."""
    acme = make_acme()
    acme.add_issue("One")
    _on_plan(_acme_id(), "free")
    owner = _owner(app)
    preview = _upload(owner, "Title\nTwo\nThree\nFour\n").text
    refused = _start(owner, preview)
    assert refused.status_code == 422
    assert "This file has 3 rows and the organization has 1 issues, so nothing was imported." in refused.text
    assert "Your plan (Free) includes 3 issues." in refused.text
    assert _count(_acme_id(), Issue) == 1
    with tenant_context(_acme_id()):
        web = db.session.scalar(select(Project.id).where(Project.key == "WEB"))
        checker = imports.RowChecker(["title"], ["Title"], False, web)
        rows = [checker.check(line, [title]) for line, title in enumerate(("Two", "Three", "Four"), 2)]
        with pytest.raises(quotas.QuotaExceeded):
            imports.create_issues(web, _owner_id(), rows)
        assert imports.create_issues(web, _owner_id(), rows[:2]) == rows[:2]
    assert _count(_acme_id(), Issue) == 3


def test_an_upload_past_the_plan_s_storage_is_refused_and_not_stored(app, db_session, monkeypatch):
    """A CSV that would take the organization's files past the plan is a form error; nothing is kept."""
    monkeypatch.setitem(catalog.PLANS, "free", dataclasses.replace(catalog.FREE, storage=1024))
    make_acme()
    _on_plan(_acme_id(), "free")
    refused = _upload(_owner(app), "Title\n" + "A fairly long issue title\n" * 60)
    assert refused.status_code == 422
    assert "Your plan (Free) includes 1.0 KB of files." in refused.text
    with app.app_context():
        assert tenant_bytes(_acme_id()) == 0


def test_invitations_count_as_seats(app, db_session, redis_client):
    """On Free (5 seats) four members and one pending invitation fill it: the next invitation is
    refused on the members page with the reason, and no invitation or mail is made."""
    make_acme({"grace@example.com": "member", "vic@example.com": "viewer", "max@example.com": "member"})
    _on_plan(_acme_id(), "free")
    owner = _owner(app)
    assert _invite(owner, "a@example.com").status_code == 303
    refused = _invite(owner, "b@example.com")
    assert refused.status_code == 422
    assert "Your plan (Free) includes 5 members." in refused.text
    assert "revoke a pending invitation" in refused.text
    assert _count(_acme_id(), Invitation) == 1 and sent_mails(redis_client, "b@example.com") == []


def test_accepting_is_refused_while_the_organization_is_over_its_seats(app, db_session, redis_client):
    """An invitation sent on Team is refused at acceptance once the organization is on a plan it
    already fills: the person is told why and is not a member."""
    make_acme(
        {
            "grace@example.com": "member",
            "vic@example.com": "viewer",
            "max@example.com": "member",
            "adam@example.com": "admin",
        }
    )
    _on_plan(_acme_id(), "team")
    make_user("new@example.com")
    db.session.commit()
    owner = _owner(app)
    assert _invite(owner, "new@example.com").status_code == 303
    _on_plan(_acme_id(), "free")
    link = sent_mails(redis_client, "new@example.com")[-1].link()
    guest = app.test_client()
    login(guest, "new@example.com")
    refused = post_form(guest, link)
    assert refused.status_code == 422
    assert "Your plan (Free) includes 5 members." in refused.text
    with tenant_context(_acme_id()):
        new_id = db.session.scalar(select(User.id).where(User.email == "new@example.com"))
        assert db.session.scalar(select(Membership).where(Membership.user_id == new_id)) is None
        assert db.session.scalars(select(Invitation)).one().accepted_at is None


def test_usage_for_admins(app, db_session):
    """The plan and usage page lists each limit used and included; members count pending
    invitations, archived projects do not count; members who are not admins get 403."""
    acme = make_acme({"grace@example.com": "admin", "vic@example.com": "member"}, projects=("WEB", "API"))
    acme.add_issue("One")
    acme.add_issue("Two", project="API")
    _on_plan(_acme_id(), "free")
    owner = _owner(app)
    _invite(owner, "a@example.com")
    post_form(owner, "/acme/projects/API/archive")
    grace = app.test_client()
    login(grace, "grace@example.com")
    page = grace.get("/acme/settings/plan")
    assert page.status_code == 200
    rows = {
        name: " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for name, row in re.findall(r'<tr id="usage-(\w+)"[^>]*>(.*?)</tr>', page.text, re.S)
    }
    assert rows["members"].startswith("Members 4 5")
    assert rows["projects"].startswith("Active projects 1 3")
    assert rows["issues"].startswith("Issues 2 1,000")
    assert rows["storage"].startswith("Files 0.0 KB 100 MB")
    assert 'value="80"' in page.text  # the members' bar: 4 of 5
    assert "Free" in page.text and "60" in page.text
    assert "/acme/settings/plan" in grace.get("/acme/settings").text
    vic = app.test_client()
    login(vic, "vic@example.com")
    assert vic.get("/acme/settings/plan").status_code == 403


@pytest.fixture
def operator(app, monkeypatch):
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({"ops@example.com"}))
    make_user("ops@example.com", name="Otto Operator")
    db.session.commit()
    client = app.test_client()
    login(client, "ops@example.com")
    return client


def test_an_operator_puts_an_organization_on_a_plan(app, db_session, operator):
    """The plan form as rendered changes the plan, audited in the organization's log; a plan below
    its usage is allowed with a warning, removes nothing, and refuses new projects."""
    make_acme(projects=("WEB", "API"))
    with tenant_context(_acme_id()):
        db.session.add_all([Project(key=k, name=k, created_by_id=_owner_id()) for k in ("OPS", "MOB")])
        db.session.flush()
    db.session.commit()
    listing = operator.get("/operators/organizations").text
    assert f'href="/operators/organizations/{_acme_id()}/plan"' in listing and ">Business</a>" in listing
    url = f"/operators/organizations/{_acme_id()}/plan"
    changed = post_form(operator, url, plan="free")
    assert changed.status_code == 303
    warned = operator.get(changed.headers["Location"]).text
    assert "Acme is on Free now, and uses more than it includes: 4 of 3 active projects." in warned
    assert db.session.scalar(select(Organization.plan).where(Organization.id == _acme_id())) == "free"
    with tenant_context(_acme_id()):
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "organization.plan_changed")
        ).one()
        assert event.data["plan_from"] == "business" and event.data["plan_to"] == "free"
        assert event.actor_id == db.session.scalar(select(User.id).where(User.email == "ops@example.com"))
    assert _count(_acme_id(), Project) == 4
    refused = post_form(_owner(app), "/acme/projects/new", name="Data", key="DATA")
    assert refused.status_code == 422 and PROJECTS_REFUSED in refused.text
    assert operator.get(url).status_code == 200
    assert post_form(operator, url, plan="team").status_code == 303
    assert "Acme is on Team now." in operator.get(url).text


def test_only_operators_reach_the_plan_page(app, db_session, operator):
    """The owner gets 404 from the operators' plan page, as for every operator page."""
    make_acme()
    db.session.commit()
    assert _owner(app).get(f"/operators/organizations/{_acme_id()}/plan").status_code == 404


@pytest.mark.postgres_only
def test_two_creators_cannot_both_take_the_last_project(app, committed_db):
    """Two people creating a project at once on a plan with one place left: the second waits on the
    organization's row, counts the first's project, and is refused; exactly one is made."""
    with app.app_context():
        acme = make_acme(projects=("WEB", "API"))
        acme.org.plan = "free"
        db.session.commit()
        org_id, owner_id = acme.id, acme.owner.id
    barrier = threading.Barrier(2)
    outcomes, errors = [], []

    def create(key):
        try:
            with app.app_context(), tenant_context(org_id):
                owner = db.session.get(User, owner_id)
                barrier.wait(10)
                try:
                    projects.create_project(owner, f"Project {key}", key)
                except quotas.QuotaExceeded:
                    db.session.rollback()
                    outcomes.append("refused")
                else:
                    time.sleep(0.5)  # the first keeps the organization's row a while: the other waits
                    db.session.commit()
                    outcomes.append("created")
        except Exception as exc:  # reported by the assertion below
            errors.append(repr(exc))

    threads = [threading.Thread(target=create, args=(key,)) for key in ("OPS", "MOB")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(outcomes) == ["created", "refused"]
    with app.app_context():
        assert _count(org_id, Project) == 3
