"""Deleting an organization: an owner asks with their password and its name, it stays read-only
for a grace period that any owner can end by cancelling, then a job deletes all of it in batches,
its files too, and its address is held."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.core.storage import file_store
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import AuditEvent, Comment, HeldSlug, Issue, Organization, User
from app.models.base import utcnow
from app.orgs import deletion
from tests.accounts import PASSWORD, enrol_two_factor, login, post_form, sent_mails
from tests.factories import make_acme, make_beta

SETTINGS = "/acme/settings"
DELETE = "/acme/settings/delete"
CANCEL = "/acme/settings/delete/cancel"


@pytest.fixture
def acme(db_session):
    """Acme with a second owner (ann@), an admin (ava@) and a member (grace@), two issues with a
    comment; Beta beside it with an issue of its own."""
    team = make_acme({"ann@example.com": "owner", "ava@example.com": "admin", "grace@example.com": "member"})
    issue = team.add_issue("Broken login")
    team.add_issue("Slow search")
    with tenant_context(team.org.id):
        db.session.add(Comment(issue_id=issue.id, author_id=team.owner.id, body="Seen on Safari"))
        db.session.flush()
    beta = make_beta(projects=("WEB",))
    beta.add_issue("Beta's own issue")
    db_session.commit()
    return team.ref


def _ask(client, name="Acme", password=PASSWORD):
    return post_form(client, DELETE, name=name, password=password)


def _organization(org_id) -> Organization | None:
    db.session.expire_all()
    with unscoped("test: the organization row"):
        return db.session.get(Organization, org_id)


def _rows_of(org_id) -> int:
    """Rows of the organization in every table that has a tenant_id."""
    total = 0
    with unscoped("test: count an organization's rows in every table"):
        for table in db.metadata.sorted_tables:
            if "tenant_id" in table.c:
                total += db.session.scalar(
                    select(func.count()).select_from(table).where(table.c.tenant_id == org_id)
                )
    return total


def _make_due(org_id) -> None:
    """The grace period is over: the deletion was asked for eight days ago."""
    with unscoped("test: the grace period passes"):
        db.session.execute(
            update(Organization)
            .where(Organization.id == org_id)
            .values(
                deletion_requested_at=utcnow() - timedelta(days=8),
                deletion_due_at=utcnow() - timedelta(days=1),
            )
        )
        db.session.commit()


def test_the_owner_is_asked_for_the_name_and_the_password(client, acme, redis_client):
    """A wrong name or password is a form message and changes nothing; the right ones schedule it."""
    login(client, "owner@example.com")
    wrong_name = _ask(client, name="acme")
    assert wrong_name.status_code == 422 and "Type the organization&#39;s name exactly" in wrong_name.text
    wrong_password = _ask(client, password="not my password")
    assert wrong_password.status_code == 422 and "That is not your password." in wrong_password.text
    assert _organization(acme.id).deletion_due_at is None

    asked = _ask(client)
    assert asked.status_code == 303
    org = _organization(acme.id)
    assert org.deletion_due_at - org.deletion_requested_at == deletion.GRACE
    owners = {mail.to for mail in sent_mails(redis_client) if "will be deleted" in mail.subject}
    assert owners == {"owner@example.com", "ann@example.com"}
    with tenant_context(acme.id):
        actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "organization.deletion_requested" in actions


def test_only_owners_may_delete(client, acme):
    """An admin gets 403 for the delete page and its form, and sees no button to it."""
    login(client, "ava@example.com")
    assert client.get(DELETE).status_code == 403
    assert client.post(DELETE, data={"name": "Acme", "password": PASSWORD}).status_code in (400, 403)
    assert "/settings/delete" not in client.get(SETTINGS).text


def test_while_the_deletion_waits_the_organization_is_read_only(client, app, acme):
    """Every page reads and shows when it goes; every change is refused with the reason, but an
    export of what will go."""
    login(client, "owner@example.com")
    assert _ask(client).status_code == 303
    member = app.test_client()
    login(member, "grace@example.com")
    issues = member.get("/acme/issues")
    assert issues.status_code == 200 and "is to be deleted on" in issues.text
    refused = post_form(member, "/acme/projects/WEB/issues/new", title="One more")
    assert refused.status_code == 423 and "read-only until then" in refused.text
    with tenant_context(acme.id):
        assert db.session.scalar(select(func.count()).select_from(Issue)) == 2
    assert "Cancel the deletion" in client.get(SETTINGS).text
    exported = post_form(client, "/acme/settings/export")  # a copy of what will go: allowed
    assert exported.status_code == 303


def test_an_owner_cancels_and_the_organization_can_change_again(client, app, acme, redis_client):
    """Another owner cancels: the organization is as before, every owner is told."""
    login(client, "owner@example.com")
    assert _ask(client).status_code == 303
    ann = app.test_client()
    login(ann, "ann@example.com")
    assert post_form(ann, SETTINGS, CANCEL).status_code == 303
    assert _organization(acme.id).deletion_due_at is None
    assert "is to be deleted" not in ann.get("/acme/issues").text
    told = {mail.to for mail in sent_mails(redis_client) if "was cancelled" in mail.subject}
    assert told == {"owner@example.com", "ann@example.com"}
    assert post_form(client, SETTINGS, name="Acme Corp").status_code == 303


def test_after_the_grace_period_everything_goes_and_the_address_is_held(
    client, app, acme, redis_client, monkeypatch
):
    """The job deletes every row (in batches), the files, the organization; Beta is untouched;
    nobody may take the address for 90 days; the owners are told."""
    monkeypatch.setattr(deletion, "BATCH", 2)  # several batches per table
    with app.app_context(), file_store().open_write(f"t/{acme.id}/exports/backup.zip") as handle:
        handle.write(b"a backup")
    beta_rows = _rows_of(_beta_id())
    login(client, "owner@example.com")
    assert _ask(client).status_code == 303
    with app.app_context():
        assert deletion.delete_due_organizations() == 0  # not due yet
    _pass_the_grace_period_and_try_to_cancel(client, acme)

    with app.app_context():
        assert deletion.delete_due_organizations() == 1
        assert not file_store().path(f"t/{acme.id}").exists()
    assert _organization(acme.id) is None
    assert _rows_of(acme.id) == 0
    assert _rows_of(_beta_id()) == beta_rows
    assert client.get("/acme/issues").status_code == 404
    gone = {mail.to for mail in sent_mails(redis_client) if mail.subject == "Acme has been deleted"}
    assert gone == {"owner@example.com", "ann@example.com"}
    with unscoped("test: the held address"):
        held = db.session.get(HeldSlug, "acme")
    assert held.held_until - utcnow() > timedelta(days=89)
    taken = post_form(client, "/orgs/new", name="New Acme", slug="acme")
    assert taken.status_code == 422 and "belonged to a deleted organization" in taken.text


def _beta_id():
    """Beta's id."""
    with unscoped("test: Beta's id"):
        return db.session.scalar(select(Organization.id).where(Organization.slug == "beta"))


def _pass_the_grace_period_and_try_to_cancel(client, acme) -> None:
    """Once the grace period is over the pages answer 410 Gone and cancelling is refused."""
    _make_due(acme.id)
    settings = client.get(SETTINGS)
    assert settings.status_code == 410 and "has been deleted" in settings.text
    assert _organization(acme.id).deletion_due_at is not None
    with unscoped("test: the organization row"):
        org = db.session.get(Organization, acme.id)
    owner = db.session.scalar(select(User).where(User.email == "owner@example.com"))
    with tenant_context(acme.id), pytest.raises(deletion.DeletionRefused, match="can no longer be cancelled"):
        deletion.cancel_deletion(org, owner)
    db.session.rollback()


def test_an_owner_with_two_factor_also_gives_a_code(client, acme, two_factor_clock):
    """With two-factor on, the password alone is refused: a current code is asked for as well."""
    login(client, "owner@example.com")
    authenticator, _codes = enrol_two_factor(client, two_factor_clock)
    assert "Two-factor code" in client.get(DELETE).text
    refused = _ask(client)
    assert refused.status_code == 422 and "Enter a current code" in refused.text
    assert _organization(acme.id).deletion_due_at is None
    two_factor_clock.step()  # the code that turned it on is spent
    code = authenticator.at(two_factor_clock.now)
    asked = post_form(client, DELETE, name="Acme", password=PASSWORD, code=code)
    assert asked.status_code == 303 and _organization(acme.id).deletion_due_at is not None
