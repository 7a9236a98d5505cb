"""PgBouncer in transaction mode: tenants share server connections, never each other's rows.

The test command puts PgBouncer (transaction pooling) in front of PostgreSQL and the app's
connections go through it. Its database ``worklane_test_one`` is the test database behind
exactly one server connection: every transaction below runs on that connection, one client
connection after another, as a busy pool does in production.
"""

from __future__ import annotations

import os
import threading

import psycopg
import pytest
from sqlalchemy import make_url, select, text
from sqlalchemy.exc import DBAPIError

from app.config import ConfigError, TestingConfig, normalize_database_url
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Issue
from tests.accounts import login
from tests.conftest import APP_ROLE, POOLER_URL
from tests.factories import OWNER, make_acme, make_beta

ONE_SERVER_DATABASE = "worklane_test_one"


def _pooler() -> str:
    if not POOLER_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("the test command must start PgBouncer in CI (TEST_POSTGRES_POOLER_URL)")
        pytest.skip("no PgBouncer in front of PostgreSQL (apt-get install pgbouncer)")
    return normalize_database_url(POOLER_URL)


@pytest.fixture
def one_server_url(migrated_env) -> str:
    """The app role's URL of the test database through PgBouncer, on one server connection."""
    url = make_url(_pooler()).set(username=APP_ROLE, database=ONE_SERVER_DATABASE)
    return url.render_as_string(hide_password=False)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pgbouncer_show(what: str) -> list[dict]:
    """Rows of PgBouncer's admin console ``SHOW what`` (CLIENTS, SERVERS, POOLS …)."""
    admin = make_url(_pooler()).set(database="pgbouncer")
    with psycopg.connect(_libpq(admin.render_as_string(hide_password=False)), autocommit=True) as console:
        cursor = console.execute(f"SHOW {what}")
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _on_one_server(rows: list[dict]) -> list[dict]:
    return [row for row in rows if row["database"] == ONE_SERVER_DATABASE and row["user"] == APP_ROLE]


@pytest.mark.postgres_only
def test_two_organizations_interleaved_on_one_server_connection_see_only_their_own_issues(
    make_app, migrated_env, committed_db, one_server_url
):
    """Requests of two organizations alternated over eight threads, all on one server connection, each
    see only their own issues."""
    app = make_app({**migrated_env, "DATABASE_URL": one_server_url})
    with app.app_context():
        acme, beta = make_acme(), make_beta(projects=("WEB",))
        for number in (1, 2, 3):
            acme.add_issue(f"Acme plan {number}")
            beta.add_issue(f"Beta plan {number}")
        db.session.commit()
    cookie = app.config["SESSION_COOKIE_NAME"]
    sessions = {}
    for slug, email in (("acme", OWNER), ("beta", "bert@example.com")):
        client = app.test_client()
        login(client, email)
        sessions[slug] = client.get_cookie(cookie).value
    threads, rounds = 8, 12
    started = threading.Barrier(threads)
    answers, wrong = [], []

    def browse(thread: int) -> None:
        clients = {slug: app.test_client() for slug in sessions}
        for slug, client in clients.items():
            client.set_cookie(cookie, sessions[slug])
        started.wait(30)
        for step in range(rounds):
            slug, other = ("acme", "beta") if (thread + step) % 2 else ("beta", "acme")
            number = step % 3 + 1
            try:
                response = clients[slug].get(f"/{slug}/issues/WEB-{number}")
            except Exception as exc:  # collected and reported below
                wrong.append((slug, number, repr(exc)))
                continue
            html = response.get_data(as_text=True)
            answers.append(slug)
            if (
                response.status_code != 200
                or f"{slug.title()} plan {number}" not in html
                or f"{other.title()} plan" in html
            ):
                wrong.append((slug, number, response.status_code))

    workers = [threading.Thread(target=browse, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert wrong == []
    assert sorted(answers) == ["acme"] * (threads * rounds // 2) + ["beta"] * (threads * rounds // 2)
    # Several client connections of the app, one server connection behind them all.
    assert len(_on_one_server(pgbouncer_show("SERVERS"))) == 1
    assert len(_on_one_server(pgbouncer_show("CLIENTS"))) >= 2


@pytest.mark.postgres_only
def test_a_tenants_settings_end_with_its_transaction_on_a_shared_server_connection(
    make_app, migrated_env, committed_db, one_server_url
):
    """After an unscoped and then a tenant's transaction, the next transaction on that server connection
    (from another client, setting nothing) sees no tenant rows."""
    app = make_app({**migrated_env, "DATABASE_URL": one_server_url})
    backend = text("SELECT pg_backend_pid()")
    with app.app_context():
        acme = make_acme()
        acme.add_issue("Acme plan")
        db.session.commit()
        with unscoped("test: every organization's issues"):
            assert db.session.scalars(select(Issue.title)).all() == ["Acme plan"]
            served = {db.session.scalar(backend)}
        db.session.commit()
        with tenant_context(acme.id):
            assert db.session.scalars(select(Issue.title)).all() == ["Acme plan"]
            served.add(db.session.scalar(backend))
        db.session.commit()
    with psycopg.connect(_libpq(one_server_url), prepare_threshold=None) as plain:
        found = plain.execute(
            "SELECT pg_backend_pid(), current_setting('app.tenant_id', true), "
            "current_setting('app.unscoped', true), (SELECT count(*) FROM issues)"
        ).fetchone()
    assert served == {found[0]}  # the same server connection
    assert (found[1] or "", found[2] or "", found[3]) == ("", "", 0)


def _repeat_on_two_connections(app) -> int:
    """Run one query ten times on each of two client connections, a transaction each time; return
    how many statements the server connection holds prepared."""
    with app.app_context(), db.engine.connect() as first, db.engine.connect() as second:
        for _ in range(10):
            for connection in (first, second):
                connection.execute(text("SELECT count(*) FROM users")).scalar()
                connection.commit()
        return first.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()


@pytest.mark.postgres_only
def test_the_app_prepares_no_statement_on_the_server_through_the_pooler(
    make_app, migrated_env, one_server_url
):
    """Through PgBouncer the app's repeated queries are never prepared on the server, where another client
    connection would find them (without DATABASE_POOLER they collide)."""
    pooled = make_app({**migrated_env, "DATABASE_URL": one_server_url})
    assert migrated_env["DATABASE_POOLER"] == "transaction"
    assert _repeat_on_two_connections(pooled) == 0
    direct_settings = make_app({**migrated_env, "DATABASE_URL": one_server_url, "DATABASE_POOLER": ""})
    with pytest.raises(DBAPIError) as collision:
        _repeat_on_two_connections(direct_settings)
    assert isinstance(collision.value.orig, psycopg.errors.DuplicatePreparedStatement)


def test_database_pooler_transaction_turns_off_server_side_prepared_statements():
    """DATABASE_POOLER=transaction gives psycopg prepare_threshold=None on PostgreSQL; anything else
    but unset is refused."""
    base = {"WORKLANE_ENV": "testing", "REDIS_URL": "redis://127.0.0.1:1/0"}
    postgres = {**base, "DATABASE_URL": "postgres://app@db.invalid/worklane"}
    pooled_config = TestingConfig.from_env({**postgres, "DATABASE_POOLER": "transaction"})
    pooled = dict(pooled_config.SQLALCHEMY_ENGINE_OPTIONS)
    direct = dict(TestingConfig.from_env(postgres).SQLALCHEMY_ENGINE_OPTIONS)
    assert "prepare_threshold" not in direct["connect_args"]
    assert pooled.pop("connect_args") == {**direct.pop("connect_args"), "prepare_threshold": None}
    assert pooled == direct  # the other engine options are kept
    sqlite = {**base, "DATABASE_URL": "sqlite:///unused.db", "DATABASE_POOLER": "transaction"}
    assert "connect_args" not in TestingConfig.from_env(sqlite).SQLALCHEMY_ENGINE_OPTIONS
    with pytest.raises(ConfigError, match="DATABASE_POOLER"):
        TestingConfig.from_env({**postgres, "DATABASE_POOLER": "session"})
