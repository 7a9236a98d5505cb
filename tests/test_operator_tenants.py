"""The operators' tenant console: every organization with its usage, finding a person, and
suspending an organization (its members see a page saying so; its owners are told why)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.core.storage import file_store
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import AuditEvent, User
from tests.accounts import login, make_user, post_form, sent_mails
from tests.conftest import csrf_token_from
from tests.factories import make_acme, make_beta

ORGS = "/operators/organizations"
PEOPLE = "/operators/people"


@pytest.fixture
def acme(app, db_session, monkeypatch):
    """ops@ is an operator; Acme has two members, a project and three issues; Beta has none."""
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({"ops@example.com"}))
    make_user("ops@example.com", name="Otto Operator")
    team = make_acme({"grace@example.com": "member"})
    for title in ("One", "Two", "Three"):
        team.add_issue(title)
    make_beta()
    db_session.commit()
    return team.ref


def _operator(app):
    client = app.test_client()
    login(client, "ops@example.com")
    return client


def _row(page: str, name: str) -> str:
    """The table row of the organization ``name`` (its cells' text, spaces collapsed)."""
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        text = " ".join(re.sub(r"<[^>]+>", " ", row).split())
        if text.startswith(name + " "):
            return text
    raise AssertionError(f"no row for {name}")


def test_only_operators_reach_the_tenant_console(app, client, acme):
    """The owner of Acme, like a visitor, gets 404 for each page and for suspending."""
    login(client, "owner@example.com")
    for path in (ORGS, PEOPLE + "?q=grace", f"/operators/organizations/{acme.id}/suspend"):
        assert client.get(path).status_code == 404, path
    token = csrf_token_from(client.get("/acme/settings").text)
    posted = client.post(
        f"/operators/organizations/{acme.id}/suspend", data={"reason": "x", "csrf_token": token}
    )
    assert posted.status_code == 404


def test_each_organization_with_its_usage(app, acme):
    """Members, projects, issues and the size of its files, per organization; a search narrows."""
    with app.app_context(), file_store().open_write(f"t/{acme.id}/exports/backup.zip") as handle:
        handle.write(b"x" * 2_097_152)
    operator = _operator(app)
    page = operator.get(ORGS).text
    assert _row(page, "Acme").startswith("Acme /acme/ · since")
    assert " 2 1 3 2.0 MB " in _row(page, "Acme") and "active" in _row(page, "Acme")
    assert " 1 0 0 0.0 MB " in _row(page, "Beta")
    only_beta = operator.get(ORGS + "?q=bet").text
    assert "2 organizations" not in only_beta and "1 organization matching" in only_beta
    with pytest.raises(AssertionError):
        _row(only_beta, "Acme")


def test_find_a_person_with_their_organizations(app, acme):
    """A part of the email finds Grace with her organization and role; two letters find nobody."""
    operator = _operator(app)
    found = operator.get(PEOPLE + "?q=GRACE@").text
    assert "Grace Hopper" in found and "grace@example.com" in found and "Acme" in found and "Member" in found
    assert "Grace Hopper" not in operator.get(PEOPLE + "?q=gr").text
    assert "Olive Owner" not in operator.get(PEOPLE + "?q=%25").text  # % is a character, not a wildcard


def test_suspend_and_open_again(app, client, acme, redis_client):
    """A reason is required; once suspended the members see a page saying so, the owner is mailed
    the reason and the audit log records the operator; opened again, the pages are back."""
    operator = _operator(app)
    suspend = f"/operators/organizations/{acme.id}/suspend"
    refused = post_form(operator, suspend, reason="  ")
    assert refused.status_code == 422 and "Say why" in refused.text
    assert post_form(operator, suspend, reason="Unpaid invoices since March").status_code == 303

    login(client, "grace@example.com")
    closed = client.get("/acme/issues")
    assert closed.status_code == 403 and "Acme is suspended" in closed.text
    assert "suspended" in _row(operator.get(ORGS).text, "Acme")
    mail = [m for m in sent_mails(redis_client, "owner@example.com") if m.subject == "Acme is suspended"]
    assert len(mail) == 1 and "Unpaid invoices since March" in mail[0].text
    with tenant_context(acme.id):
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "organization.suspended")
        ).one()
        operator_id = db.session.scalar(select(User.id).where(User.email == "ops@example.com"))
        assert event.actor_id == operator_id and event.data["reason"] == "Unpaid invoices since March"

    unsuspend = f"/operators/organizations/{acme.id}/unsuspend"
    assert post_form(operator, unsuspend).status_code == 303
    assert client.get("/acme/issues").status_code == 200
    assert [m.subject for m in sent_mails(redis_client, "owner@example.com")][-1] == "Acme is open again"
