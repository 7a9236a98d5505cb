"""An operator signs in as a person: POST only, with a reason; a banner on every page; the
person's cached pages neither served nor stored; every step and change in the audit log of the
person's organizations, as the operator's; their credentials untouchable; the session flushed at
the start and the end, which comes by itself after the time allowed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import AuditEvent, User
from app.operators import impersonation
from tests.accounts import PASSWORD, login, make_user, post_form
from tests.conftest import csrf_token_from
from tests.factories import make_acme

BANNER = "You are signed in as <strong>Grace Hopper</strong>"


@pytest.fixture
def acme(app, db_session, monkeypatch):
    """ops@ is an operator; Grace is an admin of Acme, with WEB-1."""
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({"ops@example.com"}))
    make_user("ops@example.com", name="Otto Operator")
    team = make_acme({"grace@example.com": "admin"})
    team.add_issue("Broken login")
    db_session.commit()
    return team.ref


def _id_of(email: str):
    return db.session.scalar(select(User.id).where(User.email == email))


def _events(org_id, action: str) -> list[AuditEvent]:
    db.session.expire_all()
    with tenant_context(org_id):
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def _impersonate(app, reason="Ticket 4711: the board looks empty to her"):
    operator = app.test_client()
    login(operator, "ops@example.com")
    grace = _id_of("grace@example.com")
    started = post_form(operator, f"/operators/people/{grace}/impersonate", reason=reason)
    return operator, started


def test_only_operators_may_and_only_with_a_reason(app, client, acme):
    """The owner gets 404; an operator must say why; nobody signs in as an operator."""
    grace = _id_of("grace@example.com")
    login(client, "owner@example.com")
    assert client.get(f"/operators/people/{grace}/impersonate").status_code == 404
    operator, refused = _impersonate(app, reason=" ")
    assert refused.status_code == 422 and "Say why" in refused.text
    ops = _id_of("ops@example.com")
    assert post_form(operator, f"/operators/people/{ops}/impersonate", reason="x").status_code == 422
    assert operator.get(f"/operators/people/{grace}/impersonate").status_code == 200


def test_the_session_is_hers_with_a_banner_and_the_start_is_audited(app, acme):
    """After the POST the operator's old session is gone and every page says whose this is."""
    operator = app.test_client()
    login(operator, "ops@example.com")
    old_cookie = operator.get_cookie("worklane_session").value
    grace = _id_of("grace@example.com")
    assert (
        post_form(operator, f"/operators/people/{grace}/impersonate", reason="Ticket 4711").status_code == 303
    )
    page = operator.get("/acme/issues")
    assert page.status_code == 200 and BANNER in page.text and "Otto Operator" in page.text
    assert operator.get_cookie("worklane_session").value != old_cookie
    stale = app.test_client()
    stale.set_cookie("worklane_session", old_cookie)
    assert stale.get("/operators/").status_code == 404  # the operator's old session ended
    [event] = _events(acme.id, "impersonation.started")
    assert event.actor_id == _id_of("ops@example.com") and event.data["reason"] == "Ticket 4711"
    assert event.data["person"] == "grace@example.com"


def test_her_cached_pages_are_neither_served_nor_stored(app, acme):
    """Grace's cached list is not what the operator gets, and the operator's pages do not reach her."""
    grace = app.test_client()
    login(grace, "grace@example.com")
    assert BANNER not in grace.get("/acme/issues").text  # cached for her now
    assert BANNER not in grace.get("/acme/issues/WEB-1").text
    operator, _ = _impersonate(app)
    assert BANNER in operator.get("/acme/issues").text
    assert BANNER in operator.get("/acme/issues/WEB-1").text
    assert BANNER not in grace.get("/acme/issues").text
    assert BANNER not in grace.get("/acme/issues/WEB-1").text


def test_changes_are_recorded_as_the_operators_and_credentials_are_refused(app, acme):
    """A comment made meanwhile is recorded with the operator as actor, so is what a change records
    itself (a label created, naming Grace as the one acted for); a password change is 403."""
    operator, _ = _impersonate(app)
    assert (
        post_form(
            operator, "/acme/issues/WEB-1", "/acme/issues/WEB-1/comments", body="Looks fine"
        ).status_code
        == 303
    )
    [action] = _events(acme.id, "impersonation.action")
    assert action.actor_id == _id_of("ops@example.com")
    assert action.data == {
        "method": "POST",
        "path": "/acme/issues/WEB-1/comments",
        "person": "grace@example.com",
    }
    label = post_form(
        operator, "/acme/settings/labels", "/acme/settings/labels", name="triage", color="#dc2626"
    )
    assert label.status_code in (200, 303), label.status_code
    [created] = _events(acme.id, "label.created")
    assert (
        created.actor_id == _id_of("ops@example.com") and created.data["on_behalf_of"] == "grace@example.com"
    )
    token = csrf_token_from(operator.get("/account").text)
    refused = operator.post(
        "/account/password",
        data={"csrf_token": token, "password-current_password": PASSWORD, "password-password": "x" * 20},
    )
    assert refused.status_code == 403


def test_ending_flushes_the_session_and_is_audited(app, acme):
    """End: the operator is signed out (not back as themselves), and the end is recorded."""
    operator, _ = _impersonate(app)
    token = csrf_token_from(operator.get("/acme/issues").text)
    ended = operator.post("/operators/impersonation/end", data={"csrf_token": token})
    assert ended.status_code == 303 and ended.location.endswith("/login")
    assert operator.get("/acme/issues").status_code in (302, 303)
    assert len(_events(acme.id, "impersonation.ended")) == 1


def test_it_ends_by_itself_after_the_time_allowed(app, acme, monkeypatch):
    """Started with no time left, the next request ends it, signs out and records the expiry."""
    monkeypatch.setattr(impersonation, "DURATION", timedelta(seconds=0))
    operator, _ = _impersonate(app)
    expired = operator.get("/acme/issues")
    assert expired.status_code in (302, 303) and expired.location.endswith("/login")
    assert operator.get("/acme/issues").status_code in (302, 303)
    assert len(_events(acme.id, "impersonation.expired")) == 1
