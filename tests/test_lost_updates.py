"""No lost updates: a save changes only what the person changed; a collision is a 409, never an overwrite."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.issues import services as issues
from app.models import Issue, IssueActivity, Membership, Organization, Project, SavedView, User
from tests.accounts import add_member, login, make_org, make_user
from tests.factories import make_acme
from tests.support.forms import post_forms
from tests.support.workers import wait_for


def _people():
    """Acme with an owner (Olive), an admin (Ada) and a member (Grace), a WEB project, one issue."""
    acme = make_acme(
        {"ada@example.com": "admin", "grace@example.com": "member"},
        projects={"WEB": {"name": "Website", "description": "The site."}},
        labels=("bug",),
    )
    acme.add_issue("Original title", "Some words.", assignee_ids=[acme.people["grace@example.com"].id])
    db.session.commit()
    return acme.id


@pytest.fixture
def acme(db_session):
    return _people()


class Tab:
    """A page as one person loaded it, whose forms they fill in and submit later."""

    def __init__(self, client, url):
        self.client, self.url = client, url
        page = client.get(url)
        assert page.status_code == 200, (url, page.status_code)
        self.forms = post_forms(page.get_data(as_text=True), url)

    def submit(self, action_part: str, headers=None, **changes):
        """Submit the form posting to ``…action_part`` as rendered, with ``changes`` typed in."""
        form = next(f for f in self.forms if f.action.endswith(action_part))
        data = {}
        for name, value in form.submission():
            data.setdefault(name, []).append(value)
        for name, value in changes.items():
            data[name] = value if isinstance(value, list) else [value]
        return self.client.post(form.action, data=data, headers=headers or {})


def _client(app, email):
    client = app.test_client()
    login(client, email)
    return client


def _issue(org_id) -> Issue:
    with tenant_context(org_id):
        db.session.expire_all()
        issue = db.session.scalars(select(Issue)).one()
        issue.assignees  # noqa: B018
        return issue


def _history(org_id, field):
    with tenant_context(org_id):
        return [
            (a.actor.name, a.old_value, a.new_value)
            for a in db.session.scalars(
                select(IssueActivity).where(IssueActivity.field == field).order_by(IssueActivity.created_at)
            )
        ]


def test_saves_of_different_fields_both_stick(app, db_session, acme):
    """A changes the title, B (page opened before) then changes the state: both changes are kept."""
    olive, grace = _client(app, "owner@example.com"), _client(app, "grace@example.com")
    a, b = Tab(olive, "/acme/issues/WEB-1"), Tab(grace, "/acme/issues/WEB-1")
    assert a.submit("/edit", title="Title by Olive").status_code == 303
    assert b.submit("/edit", state="in_progress").status_code == 303
    issue = _issue(acme)
    assert (issue.title, issue.state) == ("Title by Olive", "in_progress")
    assert [u.name for u in issue.assignees] == ["Grace Hopper"]
    assert _history(acme, "title") == [("Olive Owner", "Original title", "Title by Olive")]
    assert _history(acme, "state") == [("Grace Hopper", "Todo", "In progress")]


def test_the_same_field_changed_by_both_is_a_409_that_keeps_the_input(app, db_session, acme):
    """B's save of a title A changed meanwhile is refused with 409, shows A's change, keeps B's text."""
    olive, grace = _client(app, "owner@example.com"), _client(app, "grace@example.com")
    a, b = Tab(olive, "/acme/issues/WEB-1"), Tab(grace, "/acme/issues/WEB-1")
    assert a.submit("/edit", title="Title by Olive").status_code == 303
    refused = b.submit("/edit", title="Title by Grace", estimate="3")
    assert refused.status_code == 409
    html = refused.get_data(as_text=True)
    assert "Olive Owner changed it to “Title by Olive”" in html
    assert 'value="Title by Grace"' in html and 'value="3"' in html
    issue = _issue(acme)
    assert (issue.title, issue.estimate) == ("Title by Olive", None)
    again = Tab.__new__(Tab)
    again.client, again.forms = grace, post_forms(html, "/acme/issues/WEB-1")
    assert again.submit("/edit").status_code == 303  # having seen Olive's change, Grace keeps hers
    issue = _issue(acme)
    assert (issue.title, issue.estimate) == ("Title by Grace", 3)


def test_assignees_cleared_by_one_and_kept_by_other_stay_cleared(app, db_session, acme):
    """A removes the assignee; B's later save of another field does not bring the assignee back."""
    olive, grace = _client(app, "owner@example.com"), _client(app, "grace@example.com")
    a, b = Tab(olive, "/acme/issues/WEB-1"), Tab(grace, "/acme/issues/WEB-1")
    assert a.submit("/edit", assignees=[]).status_code == 303
    assert b.submit("/edit", priority="2").status_code == 303
    issue = _issue(acme)
    assert issue.assignees == [] and issue.priority == 2


@pytest.mark.parametrize("htmx", [False, True])
def test_a_board_move_of_a_card_moved_meanwhile_is_a_409(app, db_session, acme, htmx):
    """B moves a card that A moved since B loaded the board: refused (409) with the current board."""
    olive, grace = _client(app, "owner@example.com"), _client(app, "grace@example.com")
    a, b = Tab(olive, "/acme/projects/WEB/board"), Tab(grace, "/acme/projects/WEB/board")
    assert a.submit("/WEB-1/move", state="in_progress").status_code == 303
    headers = {"HX-Request": "true"} if htmx else {}
    refused = b.submit("/WEB-1/move", headers=headers, state="done")
    assert refused.status_code == 409
    html = refused.get_data(as_text=True)
    assert "moved it to In progress" in html and 'id="board-columns"' in html
    assert ("<html" in html) is not htmx
    assert _issue(acme).state == "in_progress"
    # The board B gets back is current: moving from it works.
    fresh = post_forms(html, "/acme/projects/WEB/board")
    form = next(f for f in fresh if f.action.endswith("/WEB-1/move"))
    data = dict(form.submission())
    data["state"] = "done"
    assert grace.post(form.action, data=data).status_code == 303
    assert _issue(acme).state == "done"


def test_the_cached_board_carries_each_cards_current_column(app, db_session, acme):
    """After a move, the (cached) board every member loads carries the card's new column: moves work."""
    olive, grace = _client(app, "owner@example.com"), _client(app, "grace@example.com")
    Tab(grace, "/acme/projects/WEB/board")  # fills the board's caches
    assert Tab(olive, "/acme/projects/WEB/board").submit("/WEB-1/move", state="in_review").status_code == 303
    b = Tab(grace, "/acme/projects/WEB/board")
    form = next(f for f in b.forms if f.action.endswith("/WEB-1/move"))
    assert form.values()["from_state"] == ["in_review"]
    assert b.submit("/WEB-1/move", state="done").status_code == 303
    assert _issue(acme).state == "done"


def test_a_move_to_where_someone_already_moved_it_is_fine(app, db_session, acme):
    """Both move the card to the same column: the second move is no change, not a conflict."""
    olive, grace = _client(app, "owner@example.com"), _client(app, "grace@example.com")
    a, b = Tab(olive, "/acme/projects/WEB/board"), Tab(grace, "/acme/projects/WEB/board")
    assert a.submit("/WEB-1/move", state="done").status_code == 303
    assert b.submit("/WEB-1/move", state="done").status_code == 303
    assert _history(acme, "state") == [("Olive Owner", "Todo", "Done")]


def test_project_settings_merge_and_refuse_collisions(app, db_session, acme):
    """Project settings: different fields both stick; the same field changed twice is a 409."""
    olive, ada = _client(app, "owner@example.com"), _client(app, "ada@example.com")
    a, b = Tab(olive, "/acme/projects/WEB/settings"), Tab(ada, "/acme/projects/WEB/settings")
    assert a.submit("/settings", name="Website 2").status_code == 303
    assert b.submit("/settings", description="New words.").status_code == 303
    c = Tab(ada, "/acme/projects/WEB/settings")
    assert a.submit("/settings", name="Website 3").status_code == 409  # A's page still shows "Website"
    assert c.submit("/settings", name="Website by Ada").status_code == 303
    with tenant_context(acme):
        db.session.expire_all()
        project = db.session.scalars(select(Project)).one()
        assert (project.name, project.description) == ("Website by Ada", "New words.")


def test_organization_settings_refuse_a_collision(app, db_session, acme):
    """Two admins rename the organization from pages loaded at the same time: the second gets 409."""
    olive, ada = _client(app, "owner@example.com"), _client(app, "ada@example.com")
    a, b = Tab(olive, "/acme/settings"), Tab(ada, "/acme/settings")
    assert a.submit("/acme/settings", name="Acme Rockets").status_code == 303
    refused = b.submit("/acme/settings", name="Acme Anvils")
    assert refused.status_code == 409 and "Acme Rockets" in refused.get_data(as_text=True)
    assert db.session.get(Organization, acme).name == "Acme Rockets"


def test_role_changes_refuse_a_collision(app, db_session, acme):
    """A makes Grace an admin; B's change of Grace's role from the old page is refused (409)."""
    olive, ada = _client(app, "owner@example.com"), _client(app, "ada@example.com")
    a, b = Tab(olive, "/acme/members"), Tab(ada, "/acme/members")
    with tenant_context(acme):
        grace_ms = db.session.scalars(
            select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(User.email == "grace@example.com")
        ).one()
        grace_ms_id = grace_ms.id
        grace_path = f"/members/{grace_ms_id}/role"
    assert a.submit(grace_path, role="admin").status_code == 303
    refused = b.submit(grace_path, role="viewer")
    assert refused.status_code == 409 and "Admin" in refused.get_data(as_text=True)
    with tenant_context(acme):
        db.session.expire_all()
        assert db.session.get(Membership, (acme, grace_ms_id)).role == "admin"


def test_account_name_refuses_a_collision(app, db_session, acme):
    """Two tabs of the account page: the second tab's rename, from the old name, is a 409."""
    olive = _client(app, "owner@example.com")
    a, b = Tab(olive, "/account"), Tab(olive, "/account")
    assert a.submit("/account/profile", **{"profile-name": "Olive Oyl"}).status_code == 303
    assert b.submit("/account/profile", **{"profile-name": "Olive Other"}).status_code == 409
    db.session.expire_all()
    assert db.session.scalars(select(User).where(User.email == "owner@example.com")).one().name == "Olive Oyl"


def test_notification_choices_merge_per_organization(app, db_session, acme):
    """Two tabs change the mail choice of different organizations: both stick; the same one twice is a 409."""
    with unscoped("test setup"):
        owner = db.session.scalars(select(User).where(User.email == "owner@example.com")).one()
    other = make_org(make_user("otto@example.com", name="Otto"), "Other", "other-org")
    add_member(other, owner, "member")
    other_id, owner_id = other.id, owner.id
    db.session.commit()
    olive = _client(app, "owner@example.com")
    a, b = Tab(olive, "/account"), Tab(olive, "/account")
    acme_field, other_field = f"notifications-org_{acme.hex}", f"notifications-org_{other_id.hex}"
    assert a.submit("/account/notifications", **{acme_field: "daily"}).status_code == 303
    assert b.submit("/account/notifications", **{other_field: "off"}).status_code == 303
    assert b.submit("/account/notifications", **{acme_field: "off"}).status_code == 409
    with unscoped("test check"):
        db.session.expire_all()
        choices = dict(
            db.session.execute(
                select(Membership.tenant_id, Membership.email_notifications).where(
                    Membership.user_id == owner_id
                )
            ).all()
        )
    assert choices == {acme: "daily", other_id: "off"}


def test_an_old_form_without_its_loaded_values_is_refused(app, db_session, acme):
    """A save that does not say what it was based on is a 400 with a reason, and changes nothing."""
    olive = _client(app, "owner@example.com")
    page = olive.get("/acme/issues/WEB-1").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = olive.post(
        "/acme/issues/WEB-1/edit",
        data={"csrf_token": token, "title": "Blind", "state": "todo", "priority": "0"},
    )
    assert response.status_code == 400 and "Reload the page" in response.get_data(as_text=True)
    assert _issue(acme).title == "Original title"


def test_a_write_based_on_an_old_read_fails_at_the_database(app, committed_db):
    """The version check is in the UPDATE itself: a session holding an older version cannot write."""
    with app.app_context():
        org_id = _people()
        engine = db.engine
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with app.app_context(), tenant_context(org_id):
        stale, fresh = factory(), factory()
        old = stale.scalars(select(Issue)).one()
        stale.commit()  # the read is over; ``old`` keeps the version it saw
        current = fresh.scalars(select(Issue)).one()
        issues._touch(current)
        current.title = "Saved first"
        fresh.commit()
        issues._touch(old)
        old.title = "Based on an old read"
        with pytest.raises(StaleDataError):
            stale.commit()
        stale.rollback()
        stale.close()
        fresh.close()
        db.session.expire_all()
        assert db.session.scalars(select(Issue)).one().title == "Saved first"


def _race(app, holder, saves, results):
    """Start the saves while ``holder`` holds the row lock; release it once all of them wait."""

    def save(name, tab, action, typed):
        results[name] = tab.submit(action, **typed).status_code

    threads = [threading.Thread(target=save, args=args) for args in saves]
    for thread in threads:
        thread.start()

    def waiting() -> int:
        with app.app_context(), db.engine.connect() as probe:
            return probe.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            ).scalar()

    wait_for(lambda: waiting() >= len(saves), 20, "every save to wait for the row lock", interval=0.02)
    holder.rollback()  # release: the saves now race for the row
    holder.close()
    for thread in threads:
        thread.join(30)


@pytest.mark.postgres_only
@pytest.mark.parametrize("same_field", [True, False])
def test_two_concurrent_saves_never_both_pass_the_check(app, committed_db, same_field):
    """Two saves released at the same instant: same field, one 409; different fields, both kept."""
    with app.app_context():
        org_id = _people()
    olive, grace = _client(app, "owner@example.com"), _client(app, "grace@example.com")
    a, b = Tab(olive, "/acme/issues/WEB-1"), Tab(grace, "/acme/issues/WEB-1")
    changes = (
        ({"title": "Title by Olive"}, {"title": "Title by Grace"})
        if same_field
        else ({"title": "Title by Olive"}, {"state": "in_review"})
    )
    with app.app_context(), unscoped("the test holds the row lock"):
        holder = db.engine.connect()
        holder.execute(text("SELECT id FROM issues FOR UPDATE"))  # both saves queue behind this lock
    results = {}
    _race(app, holder, [("olive", a, "/edit", changes[0]), ("grace", b, "/edit", changes[1])], results)
    with app.app_context():
        issue = _issue(org_id)
        titles = _history(org_id, "title")
    if same_field:
        assert sorted(results.values()) == [303, 409]
        winner = "olive" if results["olive"] == 303 else "grace"
        assert issue.title == f"Title by {winner.capitalize()}"
        assert len(titles) == 1
    else:
        assert results == {"olive": 303, "grace": 303}
        assert (issue.title, issue.state) == ("Title by Olive", "in_review")


def _view_filters(org_id):
    with tenant_context(org_id):
        db.session.expire_all()
        return db.session.scalars(select(SavedView.filters).where(SavedView.name == "Mine")).one()["state"]


def _replace_form(response):
    (form,) = [
        f for f in post_forms(response.get_data(as_text=True), "/acme/views") if f.action.endswith("/views")
    ]
    return form


def _confirm_page(client, state):
    """Save the list filtered by ``state`` as the view "Mine"; returns the response."""
    return Tab(client, f"/acme/projects/WEB/issues?state={state}").submit("/views", name="Mine")


def test_saving_a_view_under_a_taken_name_asks_before_replacing(app, db_session, acme):
    """A view name already used for other filters is a 409 asking to replace; confirming replaces it."""
    olive = _client(app, "owner@example.com")
    assert _confirm_page(olive, "todo").status_code == 303
    asked = _confirm_page(olive, "done")
    assert asked.status_code == 409 and "Replace “Mine”" in asked.get_data(as_text=True)
    assert _view_filters(acme) == ["todo"]
    confirm = _replace_form(asked)
    assert olive.post(confirm.action, data=confirm.values()).status_code == 303
    assert _view_filters(acme) == ["done"]


def test_a_view_changed_after_the_replace_question_is_not_overwritten(app, db_session, acme):
    """Tab 1 is asked to replace "Mine"; tab 2 changes "Mine" meanwhile; tab 1's confirmation is a 409."""
    olive = _client(app, "owner@example.com")
    assert _confirm_page(olive, "todo").status_code == 303
    first = _confirm_page(olive, "done")
    second = _confirm_page(olive, "in_review")
    confirm_second = _replace_form(second)
    assert olive.post(confirm_second.action, data=confirm_second.values()).status_code == 303
    confirm_first = _replace_form(first)
    again = olive.post(confirm_first.action, data=confirm_first.values())
    assert again.status_code == 409 and "was changed" in again.get_data(as_text=True)
    assert _view_filters(acme) == ["in_review"]


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    ("url", "action", "table", "field"),
    [
        ("/acme/projects/WEB/settings", "/settings", "projects", "name"),
        ("/acme/settings", "/acme/settings", "organizations", "name"),
        ("/account", "/account/profile", "users", "profile-name"),
    ],
)
def test_concurrent_settings_saves_never_both_pass(app, committed_db, url, action, table, field):
    """Two saves of the same setting released at the same instant: one is saved, the other is a 409."""
    with app.app_context():
        _people()
    olive = _client(app, "owner@example.com")
    other = _client(app, "owner@example.com" if table == "users" else "ada@example.com")
    a, b = Tab(olive, url), Tab(other, url)
    with app.app_context(), unscoped("the test holds the row lock"):
        holder = db.engine.connect()
        holder.execute(text(f"SELECT 1 FROM {table} FOR UPDATE"))
    results = {}
    _race(app, holder, [("a", a, action, {field: "Name A"}), ("b", b, action, {field: "Name B"})], results)
    assert sorted(results.values()) == [303, 409]
    winner = "Name A" if results["a"] == 303 else "Name B"
    with app.app_context(), unscoped("test check"):
        names = set(db.session.scalars(text(f"SELECT name FROM {table}")))
    assert winner in names and ({"Name A", "Name B"} - {winner}).isdisjoint(names)


def test_a_write_on_a_changed_row_answers_409_not_500(make_app, test_env):
    """A versioned write that loses a race (StaleDataError) answers a 409 that says why, never a 500."""
    app = make_app(test_env)

    @app.get("/stale-write")
    def stale_write():
        raise StaleDataError("UPDATE on table 'issues' expected to update 1 row(s); 0 were matched.")

    response = app.test_client().get("/stale-write", headers={"Accept": "text/html"})
    assert response.status_code == 409
    assert "Someone changed this while you were editing it" in response.get_data(as_text=True)
