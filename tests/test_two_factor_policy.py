"""An organization's "require two-factor" policy: who may turn it on, whom it keeps out and when."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.models import AuditEvent, Organization
from tests.accounts import login, post_form
from tests.factories import OWNER, make_acme
from tests.test_two_factor import enrol

SETTINGS = "/acme/settings"
POLICY = "/acme/settings/two-factor"


@pytest.fixture
def acme(db_session):
    """Acme: owner Olive, member Grace (without two-factor)."""
    acme = make_acme({"grace@example.com": "member"})
    db_session.commit()
    return SimpleNamespace(id=acme.id, owner_id=acme.owner.id)


def _require(client, grace_days: int):
    return post_form(
        client, SETTINGS, POLICY, **{"policy-required": "y", "policy-grace_days": str(grace_days)}
    )


def _policy_started_days_ago(db_session, acme, days: int) -> None:
    """Move the policy's start back (what the check reads), as if ``days`` had passed."""
    org = db_session.get(Organization, acme.id)
    org.two_factor_required_at -= timedelta(days=days)
    db_session.commit()


def test_an_owner_without_two_factor_cannot_require_it(client, db_session, acme):
    """The policy form refuses an owner who has no two-factor, with the reason, and changes nothing."""
    login(client, OWNER)
    refused = _require(client, 0)
    assert refused.status_code == 422
    assert "Turn on two-factor authentication for your own account first" in refused.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.get(Organization, acme.id).two_factor_required_at is None


def test_members_without_two_factor_are_blocked_after_the_grace_period(
    app, client, db_session, acme, two_factor_clock
):
    """With a 3-day grace, Grace still works on day 2 and is sent to set up two-factor on day 4,
    keeping her membership and her account page; once she has it, the organization opens again."""
    login(client, OWNER)
    enrol(client, two_factor_clock)
    saved = _require(client, 3)
    assert saved.status_code == 303
    assert "Required of every member since" in client.get(SETTINGS).get_data(as_text=True)

    grace = app.test_client()
    login(grace, "grace@example.com")
    assert grace.get("/acme/").status_code == 200
    _policy_started_days_ago(db_session, acme, 2)
    assert grace.get("/acme/issues").status_code == 200
    _policy_started_days_ago(db_session, acme, 2)
    blocked = grace.get("/acme/issues")
    assert blocked.status_code == 403
    page = blocked.get_data(as_text=True)
    assert "Acme requires two-factor authentication" in page and 'href="/account#two-factor-h"' in page
    assert grace.get("/account").status_code == 200
    assert client.get("/acme/").status_code == 200  # Olive has two-factor

    enrol(grace, two_factor_clock)
    assert grace.get("/acme/issues").status_code == 200


def test_no_grace_blocks_at_once_and_turning_it_off_opens_again(
    app, client, db_session, acme, two_factor_clock
):
    """A grace period of 0 keeps Grace out at her next page; turning the policy off lets her in."""
    login(client, OWNER)
    enrol(client, two_factor_clock)
    _require(client, 0)
    grace = app.test_client()
    assert login(grace, "grace@example.com").headers["Location"] == "/acme/"
    assert grace.get("/acme/").status_code == 403
    off = post_form(client, SETTINGS, POLICY, **{"policy-grace_days": "0"})
    assert off.status_code == 303
    assert grace.get("/acme/").status_code == 200


def test_members_and_viewers_cannot_change_the_policy(app, db_session, acme):
    """Only owners and admins change the policy."""
    grace = app.test_client()
    login(grace, "grace@example.com")
    assert "Save two-factor policy" not in grace.get(SETTINGS).get_data(as_text=True)
    token_page = grace.get(SETTINGS).get_data(as_text=True)
    from tests.conftest import csrf_token_from

    answer = grace.post(POLICY, data={"csrf_token": csrf_token_from(token_page), "policy-required": "y"})
    assert answer.status_code == 403


def test_policy_changes_are_audited(client, db_session, acme, two_factor_clock):
    """Turning the policy on and off is in the organization's audit log, with the grace days."""
    login(client, OWNER)
    enrol(client, two_factor_clock)
    _require(client, 7)
    post_form(client, SETTINGS, POLICY, **{"policy-grace_days": "7"})
    db_session.expire_all()
    with tenant_context(acme.id):
        events = db_session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "two_factor.policy_changed")
            .order_by(AuditEvent.created_at, AuditEvent.id)
        ).all()
    assert [(event.data["required"], event.data["grace_days"]) for event in events] == [(True, 7), (False, 7)]
    assert events[0].actor_id == acme.owner_id
