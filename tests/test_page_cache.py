"""Whole cached pages (list, board) and the cached account: fast, and never stale or shared."""

from __future__ import annotations

import msgspec
import pytest
from sqlalchemy import event, select

from app.core.sessions import REFRESH_INTERVAL
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Membership, User
from tests.accounts import add_member, csrf_token_from, login, make_org, post_form
from tests.factories import make_acme

LIST = "/acme/projects/WEB/issues"
BOARD = "/acme/projects/WEB/board"


@pytest.fixture
def acme(db_session):
    """Acme (owner Olive, member Grace) with a WEB project holding one issue."""
    acme = make_acme({"grace@example.com": "member"})
    acme.add_issue("Broken login")
    db_session.commit()
    return acme.id


def _user(db_session, email) -> User:
    return db_session.scalars(select(User).where(User.email == email)).one()


def _queries(app, client, url) -> tuple[int, str]:
    with app.app_context():
        engine = db.engine
    statements = []

    def count(*args):
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200, url
    return len(statements), response.get_data(as_text=True)


@pytest.mark.parametrize("url", [LIST, BOARD, "/acme/issues"])
def test_a_warm_page_runs_no_query(app, client, db_session, acme, url):
    """Once cached, the list and board pages are served without a single database query."""
    login(client, "grace@example.com")
    cold, first = _queries(app, client, url)
    warm, second = _queries(app, client, url)
    assert cold > 0
    assert warm == 0
    assert "WEB-1" in second and "Grace Hopper" in second
    # The same session's own token: the signed value is the same (its timestamp may not be).
    assert csrf_token_from(second).split(".")[0] == csrf_token_from(first).split(".")[0]


def test_each_session_gets_its_own_csrf_token_from_the_cached_page(app, client, db_session, acme):
    """Two sessions of one person share the cached page but each gets its own working token."""
    login(client, "grace@example.com")
    client.get(LIST)
    other = app.test_client()
    login(other, "grace@example.com")
    html = other.get(LIST).get_data(as_text=True)
    assert "__worklane_csrf_token__" not in html
    token = csrf_token_from(html)
    assert token != csrf_token_from(client.get(LIST).get_data(as_text=True))
    logout = other.post("/logout", data={"csrf_token": token})
    assert logout.status_code in (302, 303)


def test_a_removed_member_is_refused_at_once(app, client, db_session, acme):
    """After removal, the next request of the removed member is a 404, cached page or not."""
    grace = app.test_client()
    login(grace, "grace@example.com")
    assert grace.get(LIST).status_code == 200
    assert grace.get(LIST).status_code == 200  # cached
    login(client, "owner@example.com")
    with tenant_context(acme):
        membership_id = db_session.scalar(
            select(Membership.id).where(Membership.user_id == _user(db_session, "grace@example.com").id)
        )
    assert post_form(client, f"/acme/members/{membership_id}/remove").status_code == 303
    assert grace.get(LIST).status_code == 404
    assert grace.get("/acme/").status_code == 404


def test_a_role_change_shows_at_once(app, client, db_session, acme):
    """A member made viewer loses the New issue button on the next (cached) list request."""
    grace = app.test_client()
    login(grace, "grace@example.com")
    assert "New issue" in grace.get(LIST).get_data(as_text=True)
    assert "New issue" in grace.get(LIST).get_data(as_text=True)
    login(client, "owner@example.com")
    with tenant_context(acme):
        membership_id = db_session.scalar(
            select(Membership.id).where(Membership.user_id == _user(db_session, "grace@example.com").id)
        )
    changed = post_form(client, "/acme/members", f"/acme/members/{membership_id}/role", role="viewer")
    assert changed.status_code == 303
    assert "New issue" not in grace.get(LIST).get_data(as_text=True)


def test_an_organization_rename_shows_at_once(app, client, db_session, acme):
    """Renaming the organization changes every member's cached pages and switcher."""
    grace = app.test_client()
    login(grace, "grace@example.com")
    assert "Acme" in grace.get(LIST).get_data(as_text=True)
    login(client, "owner@example.com")
    assert post_form(client, "/acme/settings", name="Acme Rockets").status_code == 303
    html = grace.get(LIST).get_data(as_text=True)
    assert "Website · Acme Rockets" in html
    assert 'class="switcher__name">Acme Rockets<' in html


def test_a_persons_new_name_shows_in_every_organization(app, client, db_session, acme):
    """A member renaming themselves shows up on the cached pages of each of their organizations."""
    olive = _user(db_session, "owner@example.com")
    other_org = make_org(_user(db_session, "grace@example.com"), "Beta", "beta")
    add_member(other_org, olive, "member")
    db_session.commit()
    grace = app.test_client()
    login(grace, "grace@example.com")
    assert "Olive Owner" in grace.get(LIST).get_data(as_text=True)  # the filter menu
    assert "Olive Owner" in grace.get("/beta/issues").get_data(as_text=True)
    login(client, "owner@example.com")
    saved = post_form(client, "/account", "/account/profile", **{"profile-name": "Olive Oyl"})
    assert saved.status_code == 303
    for url in (LIST, "/beta/issues"):
        html = grace.get(url).get_data(as_text=True)
        assert "Olive Oyl" in html and "Olive Owner" not in html, url


def test_new_notifications_and_reading_them_show_at_once(app, client, db_session, acme):
    """The unread count on a cached page moves when a notification arrives and when it is read."""
    grace = app.test_client()
    login(grace, "grace@example.com")
    assert 'class="count"' not in grace.get(LIST).get_data(as_text=True)
    login(client, "owner@example.com")
    post_form(client, "/acme/issues/WEB-1", "/acme/issues/WEB-1/comments", body="Look @grace")
    assert '<span class="count">1</span>' in grace.get(LIST).get_data(as_text=True)
    assert post_form(grace, "/acme/notifications", "/acme/notifications/read-all").status_code == 303
    assert 'class="count"' not in grace.get(LIST).get_data(as_text=True)


def test_a_saved_view_shows_at_once(app, client, db_session, acme):
    """Saving a view lists it on the cached list page straight away, and only for its owner."""
    login(client, "grace@example.com")
    client.get(LIST)
    saved = post_form(client, LIST, "/acme/views", name="My open bugs", project_key="WEB", state="todo")
    assert saved.status_code == 303
    client.get(saved.headers["Location"])  # shows the flash
    assert "My open bugs" in client.get(LIST).get_data(as_text=True)
    olive = app.test_client()
    login(olive, "owner@example.com")
    assert "My open bugs" not in olive.get(LIST).get_data(as_text=True)


def test_a_flash_message_is_shown_once_not_cached(app, client, db_session, acme):
    """A page with a flash message shows it once; the cached page never repeats it."""
    login(client, "grace@example.com")
    client.get(LIST)
    saved = post_form(client, LIST, "/acme/views", name="Mine", project_key="WEB")
    assert "Saved the view" in client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Saved the view" not in client.get(saved.headers["Location"]).get_data(as_text=True)


def test_an_ended_session_is_not_served_a_cached_page(app, client, db_session, acme):
    """After a password change elsewhere, the old session's next request is sent to log in."""
    login(client, "grace@example.com")
    assert client.get(LIST).status_code == 200
    grace = _user(db_session, "grace@example.com")
    grace.end_all_sessions()
    db_session.commit()
    response = client.get(LIST)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_an_unchanged_session_is_written_once_a_minute(app, client, db_session, redis_client, acme):
    """Page views do not rewrite the session each time, yet keep renewing its idle expiry."""
    login(client, "grace@example.com")
    client.get(LIST)
    (key,) = redis_client.keys("worklane:session:*")
    redis_client.expire(key, 100)
    client.get(LIST)
    assert redis_client.ttl(key) <= 100  # not rewritten
    stored_at = msgspec.msgpack.decode(redis_client.hget(key, "_stored_at"))
    redis_client.hset(key, "_stored_at", msgspec.msgpack.encode(stored_at - REFRESH_INTERVAL))
    client.get(LIST)
    assert redis_client.ttl(key) > app.permanent_session_lifetime.total_seconds() - 10


def test_a_project_rename_shows_at_once_on_the_board_and_lists(app, client, db_session, acme):
    """Renaming a project in its settings changes the warm board and issue lists on the next request."""
    grace = app.test_client()
    login(grace, "grace@example.com")
    for url in (LIST, BOARD):
        assert "Website" in grace.get(url).get_data(as_text=True)
        assert "Website" in grace.get(url).get_data(as_text=True)  # served from the cache
    login(client, "owner@example.com")
    saved = post_form(client, "/acme/projects/WEB/settings", name="Storefront", description="")
    assert saved.status_code == 303
    for url in (LIST, BOARD):
        html = grace.get(url).get_data(as_text=True)
        assert "Storefront" in html and "Website" not in html, url


def test_a_session_carries_one_signed_token_on_every_page(app, client, db_session, acme):
    """A session's pages carry one signed token, pages of a later second too; it posts, and
    another session's token does not."""
    import time

    login(client, "grace@example.com")
    first = csrf_token_from(client.get(LIST).get_data(as_text=True))
    second = int(time.time())
    while int(time.time()) == second:  # a token signed now would carry another time stamp
        time.sleep(0.01)
    assert csrf_token_from(client.get("/acme/issues").get_data(as_text=True)) == first
    assert csrf_token_from(client.get(BOARD).get_data(as_text=True)) == first
    other = app.test_client()
    login(other, "grace@example.com")
    theirs = csrf_token_from(other.get(LIST).get_data(as_text=True))
    assert theirs != first
    assert other.post("/logout", data={"csrf_token": first}).status_code == 400
    assert client.post("/logout", data={"csrf_token": first}).status_code in (302, 303)
