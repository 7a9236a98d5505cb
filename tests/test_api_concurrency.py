"""Two API clients at the same instant (PostgreSQL, real commits): a POST still running holds
its Idempotency-Key (the other gets 409, then the first answer), and two changes to one issue
made from the same read never both pass: one 200, one 412, nothing overwritten."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text

from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Issue
from tests.factories import make_acme
from tests.support.api import Api, make_key
from tests.support.workers import wait_for

pytestmark = pytest.mark.postgres_only


def _acme(app):
    with app.app_context():
        team = make_acme()
        team.add_issue("Broken login")
        org_id, owner_id = team.id, team.owner.id
        db.session.commit()
        return org_id, make_key(org_id, owner_id), make_key(org_id, owner_id, name="Other")


def _hold(app, statement: str):
    """A connection holding row locks until it is rolled back."""
    with app.app_context(), unscoped("the test holds row locks"):
        holder = db.engine.connect()
        holder.execute(text(statement))
    return holder


def _lock_waiters(app, count: int, what: str) -> None:
    def waiting():
        with app.app_context(), unscoped("counting lock waits"), db.engine.connect() as probe:
            return (
                probe.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                ).scalar()
                >= count
            )

    wait_for(waiting, 20, what, interval=0.02)


def _in_thread(results: dict, name: str, call):
    thread = threading.Thread(target=lambda: results.__setitem__(name, call()))
    thread.start()
    return thread


def test_a_key_in_use_answers_409_then_the_first_answer(app, committed_db):
    """The first POST claims the key and waits (its project row is locked); the same POST sent
    meanwhile gets 409 at once; once the first is done, it gets the first answer; one issue."""
    org_id, token, _ = _acme(app)
    holder = _hold(app, "SELECT id FROM projects FOR UPDATE")
    body, headers = {"project": "WEB", "title": "Once"}, {"Idempotency-Key": "deploy-7"}
    results = {}
    first = _in_thread(
        results, "first", lambda: Api(app.test_client(), token).post("/issues", json=body, headers=headers)
    )
    _lock_waiters(app, 1, "the first POST to wait for the project's row")
    meanwhile = Api(app.test_client(), token).post("/issues", json=body, headers=headers)
    assert meanwhile.status_code == 409 and "being processed" in meanwhile.get_json()["detail"]
    holder.rollback()
    holder.close()
    first.join(30)
    assert results["first"].status_code == 201
    again = Api(app.test_client(), token).post("/issues", json=body, headers=headers)
    assert again.status_code == 201 and again.get_json() == results["first"].get_json()
    with app.app_context(), tenant_context(org_id):
        assert db.session.scalar(select(func.count()).select_from(Issue).where(Issue.title == "Once")) == 1


def test_two_changes_from_one_read_never_both_pass(app, committed_db):
    """Two scripts read WEB-1 and change it at once from that read: one 200, the other 412, and the
    issue holds the change that won."""
    org_id, token, other_token = _acme(app)
    etag = Api(app.test_client(), token).get("/issues/WEB-1").headers["ETag"]
    holder = _hold(app, "SELECT id FROM issues FOR UPDATE")
    results = {}
    threads = [
        _in_thread(
            results,
            name,
            lambda t=t, title=title: Api(app.test_client(), t).patch(
                "/issues/WEB-1", json={"title": title}, headers={"If-Match": etag}
            ),
        )
        for name, t, title in (("a", token, "Title by A"), ("b", other_token, "Title by B"))
    ]
    _lock_waiters(app, 2, "both changes to wait for the issue's row")
    holder.rollback()
    holder.close()
    for thread in threads:
        thread.join(30)
    statuses = sorted(response.status_code for response in results.values())
    assert statuses == [200, 412]
    winner = next(name for name, response in results.items() if response.status_code == 200)
    with app.app_context(), tenant_context(org_id):
        assert db.session.scalar(select(Issue.title)) == f"Title by {winner.upper()}"
