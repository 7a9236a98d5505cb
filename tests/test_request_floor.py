"""The per-request floor: what a health check, a static file and a warm page ask of Redis and SQL."""

from __future__ import annotations

import re

import msgspec
import pytest
from redis.connection import AbstractConnection
from sqlalchemy import event, select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Issue
from tests.accounts import login, post_form
from tests.factories import make_acme

LIST = "/acme/projects/WEB/issues"
BOARD = "/acme/projects/WEB/board"
ISSUE = "/acme/issues/WEB-1"
_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


@pytest.fixture
def acme(db_session):
    """Acme (owner Olive, member Grace) with a WEB project holding one issue."""
    acme = make_acme({"grace@example.com": "member"})
    acme.add_issue("Broken login")
    db_session.commit()
    return acme


class Traffic:
    """The Redis round trips (the commands each sent) and SQL statements of the requests made
    inside ``watching()``."""

    def __init__(self, app, monkeypatch):
        self.app, self.monkeypatch = app, monkeypatch
        self.round_trips: list[list[str]] = []
        #: What each round trip sent, as sent.
        self.sent: list[bytes] = []
        self.statements: list[str] = []

    def watching(self):
        send = AbstractConnection.send_packed_command
        trips, sent = self.round_trips, self.sent

        def counted(connection, command, check_health=True):
            data = command if isinstance(command, bytes) else b"".join(command)
            trips.append([name.decode().upper() for name in _COMMAND.findall(data)])
            sent.append(data)
            return send(connection, command, check_health=check_health)

        self.monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
        with self.app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", self._statement)
        return self

    def _statement(self, conn, cursor, statement, *args):
        self.statements.append(statement)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.monkeypatch.undo()
        with self.app.app_context():
            event.remove(db.engine, "before_cursor_execute", self._statement)


def test_a_health_check_and_a_static_file_touch_neither_redis_nor_the_database(
    app, client, db_session, acme, monkeypatch
):
    """/healthz and static files, even with a session cookie, read and write no session and run no query."""
    login(client, "grace@example.com")
    assert client.get(LIST).status_code == 200
    with Traffic(app, monkeypatch).watching() as traffic:
        health = client.get("/healthz")
        with client.get("/static/css/app.css") as static:
            assert static.status_code == 200
    assert health.status_code == 200 and health.get_json() == {"status": "ok"}
    assert traffic.round_trips == []
    assert traffic.statements == []
    assert "Set-Cookie" not in health.headers and "Set-Cookie" not in static.headers
    assert client.get(LIST).status_code == 200  # still signed in


@pytest.mark.parametrize("url", [LIST, BOARD, "/acme/issues", ISSUE])
def test_a_warm_page_reads_redis_in_one_round_trip(app, client, db_session, acme, monkeypatch, url):
    """A cached page of a signed-in member: its session, account and page come in one Redis round trip."""
    login(client, "grace@example.com")
    client.get(url)
    client.get(url)
    with Traffic(app, monkeypatch).watching() as traffic:
        response = client.get(url)
    assert response.status_code == 200 and "Grace Hopper" in response.get_data(as_text=True)
    assert traffic.round_trips == [["HGETALL", "MGET"]]
    assert traffic.statements == []


def test_a_warm_issue_page_without_a_condition_is_not_made_conditional(
    app, client, db_session, acme, monkeypatch
):
    """A warm issue page asked for with no condition skips make_conditional, yet has its gzip ETag, Date."""
    from werkzeug.wrappers import Response

    made_conditional = []
    make_conditional = Response.make_conditional

    def counted(response, *args, **kwargs):
        made_conditional.append(response.status_code)
        return make_conditional(response, *args, **kwargs)

    monkeypatch.setattr(Response, "make_conditional", counted)
    login(client, "grace@example.com")
    gzip = {"Accept-Encoding": "gzip"}
    client.get(ISSUE, headers=gzip)
    warm = client.get(ISSUE, headers=gzip)
    assert warm.status_code == 200 and warm.headers["Content-Encoding"] == "gzip"
    assert warm.headers["ETag"].endswith(':gzip"') and warm.headers["Date"].endswith(" GMT")
    assert made_conditional == []
    again = client.get(ISSUE, headers={**gzip, "If-None-Match": warm.headers["ETag"]})
    assert again.status_code == 304 and made_conditional == [200]


def test_a_cold_page_still_reads_the_session_and_account_together(app, client, db_session, acme, monkeypatch):
    """The first page after sign-in reads the session and the account in one round trip, then the page."""
    login(client, "grace@example.com")
    client.get("/acme/")
    with Traffic(app, monkeypatch).watching() as traffic:
        assert client.get(LIST).status_code == 200
    assert traffic.round_trips[0] == ["HGETALL", "MGET"]
    assert ["HGETALL"] not in traffic.round_trips


_PERSON_BY_ID = re.compile(r"FROM users\s+WHERE users\.id = ", re.IGNORECASE)


@pytest.mark.parametrize(
    "url", [LIST + "?state=open", BOARD + "?assignee=me", "/acme/search?q=broken", ISSUE, "/acme/"]
)
def test_a_page_rendered_anew_shows_the_person_from_the_cached_account(
    app, client, db_session, acme, monkeypatch, url
):
    """A page not in the cache is rendered without reading the signed-in person's row: the layout
    shows them from their cached account."""
    login(client, "grace@example.com")
    assert client.get("/account").status_code == 200  # the account is cached
    with Traffic(app, monkeypatch).watching() as traffic:
        response = client.get(url)
    assert response.status_code == 200
    assert "Grace Hopper" in response.get_data(as_text=True)  # the layout's link to the account
    assert traffic.statements and not [s for s in traffic.statements if _PERSON_BY_ID.search(s)]


@pytest.mark.parametrize("url", [LIST + "?priority=0", "/acme/search?q=broken"])
def test_a_page_rendered_anew_is_stored_with_its_parts_in_one_round_trip(
    app, client, db_session, acme, monkeypatch, url
):
    """A list or search page not in the cache keeps what it rendered (the rows or the results,
    and the page itself) in one Redis round trip."""
    login(client, "grace@example.com")
    assert client.get(LIST).status_code == 200  # the account and the filters' choices are cached
    with Traffic(app, monkeypatch).watching() as traffic:
        assert client.get(url).status_code == 200
    writes = [trip for trip in traffic.round_trips if {"SET", "SETEX"} & set(trip)]
    # The page and its rows or results (on PostgreSQL, also the search's excerpts made).
    assert len(writes) == 1 and len(writes[0]) >= 2 and set(writes[0]) == {"SET"}, traffic.round_trips


def test_a_search_after_an_edit_reads_redis_once_between_its_session_and_its_write(
    app, client, db_session, acme, monkeypatch
):
    """A search page rendered anew after an edit reads the results it showed before and the
    layout's unread count in one round trip, between the session's and the one that stores it."""
    login(client, "grace@example.com")
    assert client.get("/acme/search?q=broken").status_code == 200
    edit = {"title": "Broken login page", "description": "", "priority": "0", "state": "todo"}
    edited = post_form(client, ISSUE, ISSUE + "/edit", **edit)
    assert edited.status_code == 303 and client.get(edited.location).status_code == 200  # its message shown
    with Traffic(app, monkeypatch).watching() as traffic:
        page = client.get("/acme/search?q=broken")
    assert page.status_code == 200 and "Broken login page" in page.get_data(as_text=True)
    session, read, write = traffic.round_trips
    assert session == ["HGETALL", "MGET"] and read == ["MGET"], traffic.round_trips
    assert b":search:" in traffic.sent[1] and b":unread:" in traffic.sent[1]
    assert set(write) == {"SET"} and len(write) >= 2  # the page and the results (and an excerpt made)
    searches = [s for s in traffic.statements if "issue_search" in s]
    assert len(searches) == 1, traffic.statements


def test_an_issue_page_after_an_edit_reads_redis_once_between_its_session_and_its_write(
    app, client, db_session, acme, monkeypatch
):
    """An issue page rendered anew after someone else's edit reads its shared parts, the forms'
    choices and the workflow states in one round trip, between the session's and the one that
    stores the parts and the page."""
    login(client, "grace@example.com")
    assert client.get(ISSUE).status_code == 200
    owner = app.test_client()
    login(owner, "owner@example.com")
    edit = {"title": "Broken login page", "description": "", "priority": "0", "state": "todo"}
    assert post_form(owner, ISSUE, ISSUE + "/edit", **edit).status_code == 303
    with Traffic(app, monkeypatch).watching() as traffic:
        page = client.get(ISSUE)
    assert page.status_code == 200 and "Broken login page" in page.get_data(as_text=True)
    session, read, write = traffic.round_trips
    assert session == ["HGETALL", "MGET"] and read == ["MGET"], traffic.round_trips
    for kind in (b":issue-parts:", b":issue-choices:", b":workflow-states:"):
        assert kind in traffic.sent[1], (kind, traffic.sent[1])
    assert set(write) == {"SET"} and len(write) == 2  # the shared parts and the person's page


def test_values_read_for_another_login_are_not_used(app, client, db_session, acme, monkeypatch):
    """When this process's copy of a session names another person, what was read for them is dropped."""
    grace_id = str(acme.people["grace@example.com"].id)
    owner = app.test_client()
    login(owner, "owner@example.com")
    assert "Olive Owner" in owner.get(LIST).get_data(as_text=True)
    login(client, "grace@example.com")
    client.get(LIST)
    sid = client.get_cookie("worklane_session").value
    recent = app.session_interface.recent
    olive = owner.get_cookie("worklane_session").value
    recent.remember(sid, dict(recent.last(olive)))  # Grace's session remembered as Olive's
    with Traffic(app, monkeypatch).watching() as traffic:
        page = client.get(LIST).get_data(as_text=True)
    assert traffic.round_trips[0] == ["HGETALL", "MGET"]
    assert len(traffic.round_trips) > 1  # Grace's own account and page are read after it
    assert "Grace Hopper" in page
    assert msgspec.msgpack.decode(recent.last(sid)[b"_user_id"]).startswith(grace_id)


def test_hooks_are_checked_for_coroutines_once_not_on_every_request(
    app, client, db_session, acme, monkeypatch
):
    """Flask's per-hook coroutine check runs on a function's first request only, and hooks still run."""
    import flask.app

    asked = []
    check = flask.app.iscoroutinefunction
    monkeypatch.setattr(flask.app, "iscoroutinefunction", lambda func: asked.append(func) or check(func))
    login(client, "grace@example.com")
    assert client.get(LIST).status_code == 200
    asked.clear()
    page = client.get(LIST)
    assert page.status_code == 200
    assert "X-Request-ID" in page.headers and "Content-Security-Policy" in page.headers
    assert asked == []


@pytest.mark.postgres_only
def test_a_page_after_an_edit_waits_on_postgresql_four_times_without_a_ping(app, committed_db, tmp_path):
    """On a pooled connection, an issue page after an edit waits on PostgreSQL four times (the
    transaction's start, its tenant setting, the page's query, the commit), with no ping first."""
    with app.app_context():
        acme = make_acme({"grace@example.com": "member"})
        acme.add_issue("Broken login")
        db.session.commit()
        acme_id, engine = acme.id, db.engine
    client = app.test_client()
    login(client, "grace@example.com")
    assert client.get(ISSUE).status_code == 200
    engine.dispose()
    trace_path = tmp_path / "protocol.trace"
    traced = []

    def trace(dbapi_connection, record):
        dbapi_connection.pgconn.trace(log.fileno())
        traced.append(dbapi_connection.pgconn)

    with open(trace_path, "w") as log:
        event.listen(engine, "connect", trace)
        try:
            assert client.get(ISSUE).status_code == 200  # a pooled connection: no longer fresh
            with app.app_context(), tenant_context(acme_id):
                issue = db.session.scalars(select(Issue)).one()
                issue.title = "Login broken on Safari"
                db.session.commit()
            assert "Login broken on Safari" in client.get(ISSUE).get_data(as_text=True)
        finally:
            event.remove(engine, "connect", trace)
            for pgconn in traced:
                pgconn.untrace()  # flushes what libpq still holds
            engine.dispose()
    messages = trace_path.read_text()
    edit = messages.index('"UPDATE issues SET title')
    edit_committed = messages.index("\tReadyForQuery\t", messages.index('"COMMIT"', edit))
    sent = messages[messages.index("\n", edit_committed) :]
    waits = [line for line in sent.splitlines() if "\tReadyForQuery\t" in line]
    assert len(waits) == 4, sent
    assert '"BEGIN"' in sent and "set_config" in sent and '";"' not in sent, sent
