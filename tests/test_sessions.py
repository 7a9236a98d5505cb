"""Sessions: parallel requests of one person, and anonymous visitors who leave nothing in Redis."""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest
from flask import flash, session
from sqlalchemy import select

from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Issue
from tests.accounts import PASSWORD, login, make_user, post_form, sent_mails
from tests.conftest import LiveServer, csrf_token_from, free_port
from tests.factories import make_acme
from tests.support.http import HttpBrowser

SESSION_KEYS = "worklane:session:*"
NEW_ISSUE = "/acme/projects/WEB/issues/new"
TABS = 16


def _acme_with_project(app) -> None:
    with app.app_context():
        make_acme()
        db.session.commit()


def _issue_titles(app) -> set[str]:
    with app.app_context(), unscoped("test check"):
        return set(db.session.scalars(select(Issue.title)))


# --- point 4: parallel requests of one session ------------------------------------------------


def test_parallel_tabs_right_after_login_all_create_their_issue(app, committed_db):
    """Sixteen tabs opened right after login each load the new-issue form and post it: all succeed."""
    _acme_with_project(app)
    with LiveServer(app, threads=TABS) as server:
        browser = HttpBrowser(server.url)
        browser.log_in("owner@example.com")
        loaded = threading.Barrier(TABS)

        def tab(number: int) -> int:
            form = browser.open(NEW_ISSUE)
            assert form.status == 200
            loaded.wait(timeout=60)  # every form is loaded before the first is posted
            data = {"csrf_token": csrf_token_from(form.body), "title": f"Tab {number}"}
            return browser.open(NEW_ISSUE, {**data, "state": "todo", "priority": "0"}).status

        with ThreadPoolExecutor(TABS) as pool:
            statuses = list(pool.map(tab, range(TABS)))
    assert statuses == [303] * TABS
    assert _issue_titles(app) == {f"Tab {number}" for number in range(TABS)}


@pytest.fixture
def held_app(make_app, migrated_env, committed_db):
    """An app with a page that writes to the session and then waits until the test lets it finish."""
    app = make_app(migrated_env)
    app.entered, app.release = threading.Event(), threading.Event()

    @app.get("/test/slow-tab")
    def slow_tab():
        session["slow_tab"] = "was here"
        flash("The slow tab saved.", "info")
        app.entered.set()
        assert app.release.wait(60)
        return "done"

    _acme_with_project(app)
    with LiveServer(app) as server:
        app.server = server
        yield app


def _start_slow_tab(app, browser) -> ThreadPoolExecutor:
    pool = ThreadPoolExecutor(1)
    pool.future = pool.submit(browser.open, "/test/slow-tab")
    assert app.entered.wait(30)
    return pool


def test_a_concurrent_save_keeps_what_another_request_wrote(held_app, redis_client):
    """A request that saves after another one wrote to the session keeps that write (and both flashes)."""
    browser = HttpBrowser(held_app.server.url)
    browser.log_in("owner@example.com")
    slow = _start_slow_tab(held_app, browser)
    form = browser.open(NEW_ISSUE)
    created = browser.open(
        NEW_ISSUE, {"csrf_token": csrf_token_from(form.body), "title": "Fast tab", "priority": "0"}
    )
    assert created.status == 303
    held_app.release.set()
    assert slow.future.result().status == 200
    slow.shutdown()
    page = browser.open(created.headers["Location"])
    assert "Created WEB-1." in page.body and "The slow tab saved." in page.body
    assert "Created WEB-1." not in browser.open(created.headers["Location"]).body  # shown once
    (key,) = redis_client.keys(SESSION_KEYS)
    assert redis_client.hget(key, "slow_tab") is not None


def test_a_request_in_flight_does_not_bring_back_a_logged_out_session(held_app, redis_client):
    """Logging out in one tab while another tab's request is running ends the session for good."""
    browser = HttpBrowser(held_app.server.url)
    browser.log_in("owner@example.com")
    slow = _start_slow_tab(held_app, browser)
    page = browser.open("/account")
    assert browser.open("/logout", {"csrf_token": csrf_token_from(page.body)}).status == 303
    held_app.release.set()
    slow.future.result()
    slow.shutdown()
    assert redis_client.keys(SESSION_KEYS) == []
    assert browser.open("/account").status == 302


# --- point 12: anonymous visitors ---------------------------------------------------------------


PUBLIC_PAGES = ("/", "/login", "/signup", "/forgot-password")


def test_anonymous_visits_store_nothing_in_redis(app, db_session, redis_client):
    """Anonymous page views, from new and returning visitors alike, create no session in Redis."""
    returning = app.test_client()
    for visit in range(25):
        for url in PUBLIC_PAGES:
            assert returning.get(url).status_code == 200
            assert app.test_client().get(url).status_code == 200
        if visit == 0:
            after_first = redis_client.dbsize()
    assert redis_client.keys(SESSION_KEYS) == []
    assert redis_client.dbsize() == after_first  # more visitors, nothing more in Redis
    assert returning.get_cookie(app.config["SESSION_COOKIE_NAME"]) is None


@pytest.mark.parametrize("url", ["/login", "/signup", "/forgot-password"])
def test_anonymous_forms_need_their_own_csrf_token(app, db_session, url):
    """An anonymous form post without a token, with a forged one, or with another visitor's is a 400."""
    visitor, other = app.test_client(), app.test_client()
    own = csrf_token_from(visitor.get(url).get_data(as_text=True))
    others = csrf_token_from(other.get(url).get_data(as_text=True))
    data = {"email": "ada@example.com", "password": PASSWORD}
    for token in (None, "forged", others):
        response = visitor.post(url, data={**data, "csrf_token": token} if token else data)
        assert response.status_code == 400, token
        assert "Reload the page" in response.get_data(as_text=True)
    assert app.test_client().post(url, data={**data, "csrf_token": own}).status_code == 400  # no cookie
    assert visitor.post(url, data={**data, "csrf_token": own}).status_code != 400


def test_login_rotates_the_session_and_logout_leaves_nothing(app, db_session, redis_client):
    """Login stores a session under a new id (a planted one is dropped); logout leaves nothing behind."""
    make_user("ada@example.com")
    db_session.commit()
    client = app.test_client()
    name = app.config["SESSION_COOKIE_NAME"]
    client.set_cookie(name, "planted-by-someone-else-0123456789-abcdefgh")
    assert login(client, "ada@example.com").status_code == 303
    sid = client.get_cookie(name).value
    assert sid != "planted-by-someone-else-0123456789-abcdefgh"
    assert redis_client.keys(SESSION_KEYS) == [f"worklane:session:{sid}".encode()]
    account = client.get("/account")
    assert account.status_code == 200
    logout = client.post("/logout", data={"csrf_token": csrf_token_from(account.get_data(as_text=True))})
    assert logout.status_code == 303
    assert redis_client.keys(SESSION_KEYS) == []
    assert "You are logged out." in client.get("/login").get_data(as_text=True)
    assert redis_client.keys(SESSION_KEYS) == []
    assert client.get("/account").status_code == 302


def test_anonymous_flash_survives_a_redirect_without_redis(app, db_session, redis_client):
    """A message for a visitor (resend confirmation) reaches the next page without a Redis session."""
    response = app.test_client()
    page = response.get("/signup/check-email")
    sent = response.post(
        "/verify/resend",
        data={"csrf_token": csrf_token_from(page.get_data(as_text=True)), "email": "ada@example.com"},
    )
    assert sent.status_code == 303
    html = response.get(sent.headers["Location"]).get_data(as_text=True)
    assert "a new link is on its way" in html and "ada@example.com" in html
    assert "a new link is on its way" not in response.get("/signup/check-email").get_data(as_text=True)
    assert redis_client.keys(SESSION_KEYS) == []


def test_a_login_outlives_a_redis_outage(app, make_app, migrated_env, db_session):
    """With Redis unreachable, a logged-in person gets a 503 page (not the login form), then is back."""
    make_user("ada@example.com")
    db_session.commit()
    client = app.test_client()
    login(client, "ada@example.com")
    name = app.config["SESSION_COOKIE_NAME"]
    sid = client.get_cookie(name).value
    outage = make_app({**migrated_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}).test_client()
    outage.set_cookie(name, sid)
    for path in ("/login", "/account"):
        response = outage.get(path)
        assert response.status_code == 503 and response.headers["Retry-After"].isdigit()
        assert "session store" in response.get_data(as_text=True)
    assert outage.get("/healthz").status_code == 200
    assert outage.get_cookie(name).value == sid  # the login is kept for when Redis is back
    make_app(migrated_env)  # Flask-Limiter has one storage for all apps: back to the working Redis
    assert client.get("/account").status_code == 200


def test_a_login_stored_whole_by_the_previous_version_goes_on(app, db_session, redis_client):
    """A session stored as one value (before sessions were hashes) stays logged in, under a new id."""
    user = make_user("ada@example.com")
    db_session.commit()
    old = secrets.token_urlsafe(32)
    whole = {"_permanent": True, "_user_id": f"{user.id}:{user.session_epoch}", "_fresh": True}
    whole.update({"_auth_at": int(time.time()), "csrf_token": "a stored token"})
    redis_client.set(f"worklane:session:{old}", msgspec.msgpack.encode(whole), ex=3600)
    client = app.test_client()
    name = app.config["SESSION_COOKIE_NAME"]
    client.set_cookie(name, old)
    assert client.get("/account").status_code == 200
    new = client.get_cookie(name).value
    assert new != old and not redis_client.exists(f"worklane:session:{old}")
    assert redis_client.type(f"worklane:session:{new}") == b"hash"
    assert client.get("/account").status_code == 200


def test_a_password_reset_by_a_visitor_needs_its_token_and_no_stored_session(app, db_session, redis_client):
    """The reset-password form (a visitor's) refuses a post without its token and stores no session."""
    make_user("ada@example.com")
    db_session.commit()
    visitor = app.test_client()
    assert post_form(visitor, "/forgot-password", email="ada@example.com").status_code == 200
    [mail] = sent_mails(redis_client, "ada@example.com")
    link = mail.link()
    page = visitor.get(link)
    assert page.status_code == 200
    data = {"password": "a brand new passphrase", "confirm": "a brand new passphrase"}
    assert visitor.post(link, data=data).status_code == 400
    done = post_form(visitor, link, **data)
    assert done.status_code == 303
    assert "Your password is changed" in visitor.get(done.headers["Location"]).get_data(as_text=True)
    assert redis_client.keys(SESSION_KEYS) == []


def test_pages_name_the_session_to_the_service_worker_by_a_tag_only(app, client, db_session):
    """A signed-in page names its session by a tag (not the session id or its CSRF secret), new
    at each login; a signed-out page names none; the worker's script is never kept stale."""
    make_acme()
    db_session.commit()
    assert "Worklane-Offline" not in client.get("/login").headers
    script = client.get("/sw.js")
    assert script.mimetype == "text/javascript" and script.headers["Cache-Control"] == "no-cache"
    assert b"worklane-pages-" in script.data
    login(client, "owner@example.com")
    first = client.get("/acme/").headers["Worklane-Offline"]
    assert first == client.get("/acme/issues").headers["Worklane-Offline"]
    tag = first.split(";")[0].removeprefix("tag=")
    sid = client.get_cookie("worklane_session").value
    assert tag not in sid and sid not in first
    assert first.endswith(f"max-age={app.config['SESSION_IDLE_MINUTES'] * 60}")
    assert "Worklane-Offline" not in client.get("/healthz").headers
    post_form(client, "/acme/", "/logout")
    assert "Worklane-Offline" not in client.get("/login").headers
    login(client, "owner@example.com")
    assert client.get("/acme/").headers["Worklane-Offline"] != first
