"""The audit log page in an organization's settings: who may read it, its filters and pages, its
CSV and JSON Lines exports, what sign-ins record, and the actor's name kept after they are gone."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from app.core import audit
from app.core.tenancy import tenant_context, unscoped
from app.models import AuditEvent, Organization, User
from app.models.base import utcnow
from app.orgs import services as orgs
from tests.accounts import add_member, login, post_form
from tests.factories import make_acme, make_beta

AUDIT = "/acme/settings/audit"


@pytest.fixture
def acme(db_session):
    team = make_acme({"grace@example.com": "admin", "max@example.com": "member"})
    beta = make_beta()
    add_member(beta.org, team.people["grace@example.com"], "member")
    db_session.commit()
    return team.ref


def _actions(db_session, org_id) -> list[tuple[str, str | None, str | None]]:
    db_session.expire_all()
    with tenant_context(org_id):
        rows = db_session.execute(
            select(AuditEvent.action, AuditEvent.actor_email, AuditEvent.ip_address).order_by(
                AuditEvent.sequence
            )
        )
        return [tuple(row) for row in rows]


def _org_id(db_session, slug):
    with unscoped("test: an organization by slug"):
        return db_session.scalar(select(Organization.id).where(Organization.slug == slug))


def test_members_and_viewers_get_403(client, acme):
    """Only owners and admins read the log or download it."""
    login(client, "max@example.com")
    for url in (AUDIT, AUDIT + ".csv", AUDIT + ".jsonl"):
        assert client.get(url).status_code == 403
    assert "Audit log" not in client.get("/acme/settings").get_data(as_text=True)


def test_another_organizations_admin_sees_nothing(client, db_session, acme):
    """Bert, who owns Beta, gets 404 at Acme's log, and Beta's log holds none of Acme's entries."""
    login(client, "bert@example.com")
    assert client.get(AUDIT).status_code == 404
    assert client.get(AUDIT + ".jsonl").status_code == 404
    page = client.get("/beta/settings/audit").get_data(as_text=True)
    assert "Beta" in page and "Olive Owner" not in page and "owner@example.com" not in page


def test_sign_ins_are_recorded_in_each_organization(client, db_session, acme):
    """A sign-in and a wrong password for an existing account go in every log the person is in;
    an unknown address records nothing."""
    assert login(client, "grace@example.com", "not her password").status_code == 422
    assert login(client, "nobody@example.com", "whatever it is").status_code == 422
    assert login(client, "grace@example.com").status_code == 303
    beta_id = _org_id(db_session, "beta")
    for org_id in (acme.id, beta_id):
        assert _actions(db_session, org_id)[-2:] == [
            ("auth.sign_in_failed", "grace@example.com", "127.0.0.1"),
            ("auth.signed_in", "grace@example.com", "127.0.0.1"),
        ]
    page = client.get(AUDIT).get_data(as_text=True)
    assert "Failed sign-in" in page and "A sign-in with a wrong password" in page


def test_role_change_and_removal_read_as_sentences(client, db_session, acme):
    """Changing a role and removing a member are recorded and described in words."""
    login(client, "owner@example.com")
    with tenant_context(acme.id):
        organization = db_session.get(Organization, acme.id)
        olive, max_ = (
            orgs.membership_for(organization, db_session.scalar(select(User.id).where(User.email == email)))
            for email in ("owner@example.com", "max@example.com")
        )
        orgs.change_role(olive, max_, "viewer")
        orgs.remove_member(olive, max_)
        db_session.commit()
    text = client.get(AUDIT).get_data(as_text=True)
    assert "Changed the role of Max Member &lt;max@example.com&gt; from member to viewer" in text
    assert "Removed Max Member &lt;max@example.com&gt; (viewer)" in text


def _bulk(db_session, org_id, count, action="test.bulk", actor=None):
    with tenant_context(org_id):
        for number in range(count):
            audit.record(action, actor=actor, number=number)
        db_session.commit()


def test_filters_and_pages(client, db_session, acme):
    """Filters by action, actor and dates; 50 a page, newest first, with the total."""
    grace = db_session.scalar(select(User).where(User.email == "grace@example.com"))
    grace_id = grace.id
    _bulk(db_session, acme.id, 55)
    _bulk(db_session, acme.id, 3, "test.other", actor=grace)
    login(client, "grace@example.com")
    everything = client.get(AUDIT).get_data(as_text=True)
    total = len(_actions(db_session, acme.id))
    assert f"{total} entries" in everything and "Page 1 of 2" in everything
    bulk = client.get(AUDIT, query_string={"action": "test.bulk"}).get_data(as_text=True)
    assert "55 entries" in bulk and "Page 1 of 2" in bulk and bulk.count("<tr>") == 51  # header + 50
    second = client.get(AUDIT, query_string={"action": "test.bulk", "page": "2"}).get_data(as_text=True)
    assert "Page 2 of 2" in second and second.count("<tr>") == 6
    by_grace = client.get(AUDIT, query_string={"actor": str(grace_id)}).get_data(as_text=True)
    assert '<span class="chip">Test: other' in by_grace and '<span class="chip">Test: bulk' not in by_grace
    today = utcnow().date()
    later = client.get(AUDIT, query_string={"from": str(today + timedelta(days=1))}).get_data(as_text=True)
    assert "0 entries" in later and "No entries match these filters" in later
    earlier = client.get(AUDIT, query_string={"to": str(today - timedelta(days=1))}).get_data(as_text=True)
    assert "0 entries" in earlier
    within = client.get(AUDIT, query_string={"from": str(today), "to": str(today), "action": "test.other"})
    assert "3 entries" in within.get_data(as_text=True)
    odd = client.get(AUDIT, query_string={"from": "yesterday"}).get_data(as_text=True)
    assert "Left out, not understood: from" in odd and f"{total} entries" in odd


def test_csv_export_is_filtered_and_neutralises_formulas(client, db_session, acme):
    """The CSV holds the filtered entries, newest first, a formula-like cell quoted."""
    login(client, "owner@example.com")
    created = post_form(client, "/acme/settings/labels", name='=HYPERLINK("http://evil")', color="#dc2626")
    assert created.status_code == 303
    _bulk(db_session, acme.id, 1, "test.other")
    client = client.application.test_client()
    login(client, "grace@example.com")
    response = client.get(AUDIT + ".csv", query_string={"action": "label.created"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert (
        "attachment" in response.headers["Content-Disposition"]
        and ".csv" in response.headers["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["action"] for row in rows] == ["label.created"]
    assert rows[0]["target_label"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["actor_name"] == "Olive Owner" and rows[0]["hash"]


def test_jsonl_export_holds_every_field(client, db_session, acme, monkeypatch):
    """Each line of the JSON Lines file is one entry with its chain hashes, read a batch at a time;
    the download is audited."""
    monkeypatch.setattr("app.audit.log.EXPORT_BATCH", 2)
    _bulk(db_session, acme.id, 3)
    login(client, "grace@example.com")
    response = client.get(AUDIT + ".jsonl", query_string={"action": "test.bulk"})
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [line["data"]["number"] for line in lines] == [2, 1, 0]
    assert lines[0]["prev_hash"] == lines[1]["hash"] and lines[0]["sequence"] == lines[1]["sequence"] + 1
    assert {"actor_name", "actor_email", "ip_address", "request_id", "target_label", "time"} <= set(lines[0])
    assert _actions(db_session, acme.id)[-1][:2] == ("audit.exported", "grace@example.com")


def test_actor_name_is_kept_after_the_person_is_deleted(client, db_session, acme):
    """An entry keeps who did it, by name and address, when the account is gone."""
    with tenant_context(acme.id):
        max_ = db_session.scalar(select(User).where(User.email == "max@example.com"))
        audit.record("test.by_max", actor=max_)
        db_session.commit()
    with unscoped("test: deleting an account"):
        db_session.execute(delete(User).where(User.email == "max@example.com"))
    db_session.commit()
    login(client, "owner@example.com")
    page = client.get(AUDIT, query_string={"action": "test.by_max"}).get_data(as_text=True)
    assert "Max Member" in page and "max@example.com" in page
    assert client.application.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0


def test_retention_is_an_organization_setting(client, db_session, acme):
    """Owners and admins choose how many days the log keeps (at least 30); the change is audited."""
    login(client, "grace@example.com")
    response = post_form(client, "/acme/settings", name="Acme", audit_retention_days="90")
    assert response.status_code == 303
    db_session.expire_all()
    assert db_session.get(Organization, acme.id).audit_retention_days == 90
    assert _actions(db_session, acme.id)[-1][:2] == ("audit.retention_changed", "grace@example.com")
    refused = post_form(client, "/acme/settings", name="Acme", audit_retention_days="10")
    assert refused.status_code == 422 and "Choose between 30 and 3650 days" in refused.get_data(as_text=True)
