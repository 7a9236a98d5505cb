"""A person's sessions on their account page: listed with browser and address, one or all others
ended (that browser is signed out at its next request), and the per-person index kept tidy."""

from __future__ import annotations

import re

import pytest

from app.auth.devices import browser_summary
from app.core.session_index import index_key
from tests.accounts import login, post_form
from tests.factories import make_acme

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
EDGE = CHROME + " Edg/131.0.2903.86"


@pytest.fixture
def acme(db_session):
    team = make_acme({"grace@example.com": "admin"})
    db_session.commit()
    return team.ref


def _browser(app, agent: str, address: str = "127.0.0.1"):
    """A test client that sends ``agent`` as its User-Agent and comes from ``address``, signed in as Grace."""
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": agent, "REMOTE_ADDR": address})
    assert login(client, "grace@example.com").status_code == 303
    return client


def _handles(html: str) -> list[str]:
    return re.findall(r'name="session" type="hidden" value="([0-9a-f]+)"', html)


@pytest.mark.parametrize(
    ("agent", "summary"),
    [
        (FIREFOX, "Firefox on Linux"),
        (CHROME, "Chrome on Windows"),
        (SAFARI, "Safari on iOS"),
        (EDGE, "Edge on Windows"),
        ("curl/8.5.0", "Unknown browser"),
        ("", "Unknown browser"),
    ],
)
def test_browsers_are_summarised_from_the_user_agent(agent, summary):
    """The User-Agent reads as "<browser> on <system>"."""
    assert browser_summary(agent) == summary


def test_sessions_are_listed_with_browser_and_address(app, acme):
    """The account page lists each session with its browser and address, this one marked."""
    firefox = _browser(app, FIREFOX, "10.1.2.3")
    _browser(app, CHROME, "10.9.8.7")
    page = firefox.get("/account").get_data(as_text=True)
    assert "Firefox on Linux" in page and "10.1.2.3" in page
    assert "Chrome on Windows" in page and "10.9.8.7" in page
    assert page.count("This session") == 1
    assert page.index("Firefox on Linux") < page.index("This session") < page.index("Chrome on Windows")
    assert len(_handles(page)) == 1  # only the other one can be ended here
    assert "End all other sessions" in page


def test_ending_a_session_signs_that_browser_out(app, acme):
    """Ending the other session: that browser is sent to the login form, this one stays."""
    firefox = _browser(app, FIREFOX)
    chrome = _browser(app, CHROME)
    assert chrome.get("/acme/").status_code == 200
    ended = post_form(firefox, "/account", action="/account/sessions/end")
    assert ended.status_code == 303
    assert "Session ended: Chrome on Windows" in firefox.get("/account").get_data(as_text=True)
    answer = chrome.get("/acme/")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert firefox.get("/acme/").status_code == 200
    assert "Chrome on Windows" not in firefox.get("/account").get_data(as_text=True)


def test_this_session_is_not_ended_from_the_list(app, acme):
    """A handle that is not another of the person's sessions ends nothing."""
    firefox = _browser(app, FIREFOX)
    _browser(app, CHROME)
    page = firefox.get("/account").get_data(as_text=True)
    response = post_form(firefox, "/account", action="/account/sessions/end", session="0" * 24)
    assert response.status_code == 404
    assert firefox.get("/acme/").status_code == 200
    assert "Chrome on Windows" in firefox.get("/account").get_data(as_text=True)
    assert _handles(page)


def test_ending_all_other_sessions_keeps_this_one(app, acme, redis_client):
    """End all other sessions: every other browser is signed out, this one stays; the index keeps one id."""
    firefox = _browser(app, FIREFOX)
    others = [_browser(app, CHROME), _browser(app, SAFARI)]
    response = post_form(firefox, "/account", action="/account/sessions/end-others")
    assert response.status_code == 303
    assert "2 other sessions ended." in firefox.get("/account").get_data(as_text=True)
    for other in others:
        assert other.get("/acme/").status_code == 302
    assert firefox.get("/acme/").status_code == 200
    page = firefox.get("/account").get_data(as_text=True)
    assert "Chrome on Windows" not in page and "Safari on iOS" not in page and "This session" in page


def test_the_index_drops_ended_and_expired_sessions(app, db_session, acme, redis_client):
    """Logged-out sessions leave the index when it is read; ids idle longer than a session lives
    leave it when the person's session is next written."""
    from sqlalchemy import select

    from app.models import User

    grace_id = db_session.scalar(select(User.id).where(User.email == "grace@example.com"))
    key = index_key(app.config["SESSION_KEY_PREFIX"], grace_id)
    firefox = _browser(app, FIREFOX)
    chrome = _browser(app, CHROME)
    assert redis_client.zcard(key) == 2
    post_form(chrome, "/account", action="/logout")
    firefox.get("/account")
    assert redis_client.zcard(key) == 1
    redis_client.zadd(key, {"long-expired-session": 1})  # last written in 1970
    zone = {"zone-time_zone": "Europe/Paris"}
    changed = post_form(firefox, "/account", action="/account/time-zone", **zone)
    assert changed.status_code == 303  # with a flash message: the session is written
    assert redis_client.zrange(key, 0, -1) == [firefox_sid(firefox, app).encode()]


def firefox_sid(client, app) -> str:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return cookie.value
