"""Deleting one's account: asked with the password, refused to an organization's only owner,
cancellable for a week; then the person's data goes and what they wrote stays, as "Deleted user"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.auth import deletion
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Comment, IssueAssignee, IssueWatcher, Membership, Organization, User
from app.models.base import utcnow
from tests.accounts import PASSWORD, login, post_form, sent_mails
from tests.factories import make_acme, make_beta

DELETE = "/account/delete"
ACCOUNT = "/account"


@pytest.fixture
def acme(db_session):
    """Acme with Grace (a member) who wrote WEB-1's comment and is assigned to it (so watches it);
    Grace also owns Beta alone."""
    team = make_acme({"grace@example.com": "member"})
    grace = team.people["grace@example.com"]
    issue = team.add_issue("Broken login", assignee_ids=[grace.id])
    with tenant_context(team.org.id):
        db.session.add(Comment(issue_id=issue.id, author_id=grace.id, body="Seen on Safari"))
        db.session.flush()
    beta = make_beta()
    with tenant_context(beta.org.id):  # Bert's place as Beta's owner is Grace's
        db.session.execute(update(Membership).values(user_id=grace.id))
    db_session.commit()
    return team.ref


def _grace_no_longer_owns_beta() -> None:
    with unscoped("test: Beta's id"):
        beta_id = db.session.scalar(select(Organization.id).where(Organization.slug == "beta"))
    with tenant_context(beta_id):
        db.session.execute(update(Membership).values(role="member"))
    db.session.commit()


def _grace() -> User:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.id == _grace_id()))


def _grace_id():
    with unscoped("test: Grace's id"):
        return db.session.scalar(select(Comment.author_id).where(Comment.body == "Seen on Safari"))


def test_the_only_owner_of_an_organization_cannot_ask(client, acme):
    """Grace owns Beta alone: the page says so and the request is refused, naming Beta."""
    login(client, "grace@example.com")
    page = client.get(DELETE)
    assert page.status_code == 200 and "You are the only owner of Beta" in page.text
    refused = post_form(client, DELETE, password=PASSWORD)
    assert refused.status_code == 422 and "only owner of Beta" in refused.text
    assert _grace().deletion_due_at is None


def test_ask_with_the_password_then_keep_the_account(client, acme, redis_client):
    """A wrong password is refused; the right one schedules it and mails her; she keeps it."""
    _grace_no_longer_owns_beta()
    login(client, "grace@example.com")
    assert post_form(client, DELETE, password="not mine").status_code == 422
    assert post_form(client, DELETE, password=PASSWORD).status_code == 303
    assert _grace().deletion_due_at - utcnow() > timedelta(days=6, hours=23)
    assert [m.subject for m in sent_mails(redis_client, "grace@example.com")] == [
        "Your Worklane account will be deleted in 7 days"
    ]
    assert "Your account is to be deleted on" in client.get(ACCOUNT).text
    assert post_form(client, ACCOUNT, "/account/delete/cancel").status_code == 303
    assert _grace().deletion_due_at is None


def test_after_the_grace_period_she_is_gone_and_her_comment_stays(client, app, acme, redis_client):
    """The job makes the account nameless, ends her sessions, removes her from Acme with her
    assignment and watch; her comment is shown as written by "Deleted user"."""
    _grace_no_longer_owns_beta()
    login(client, "grace@example.com")
    assert post_form(client, DELETE, password=PASSWORD).status_code == 303
    with app.app_context():
        assert deletion.delete_due_accounts() == 0  # not due yet
    grace_id = _grace_id()
    db.session.execute(
        update(User).where(User.id == grace_id).values(deletion_due_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    with app.app_context():
        assert deletion.delete_due_accounts() == 1

    grace = _grace()
    assert (grace.name, grace.deleted_at is not None, grace.deletion_due_at) == ("Deleted user", True, None)
    assert grace.email.endswith("@deleted.invalid")
    assert client.get("/acme/issues").status_code in (302, 303)  # her session ended
    again = client.post("/login", data={"email": "grace@example.com", "password": PASSWORD})
    assert again.status_code != 303
    with unscoped("test: anything left of Grace"):
        for model in (Membership, IssueAssignee, IssueWatcher):
            assert (
                db.session.scalar(select(func.count()).select_from(model).where(model.user_id == grace_id))
                == 0
            )
    owner = app.test_client()
    login(owner, "owner@example.com")
    issue = owner.get("/acme/issues/WEB-1").text
    assert "Seen on Safari" in issue and "Deleted user" in issue and "Grace Hopper" not in issue
    assert "Grace Hopper" not in owner.get("/acme/members").text
    assert [m.subject for m in sent_mails(redis_client, "grace@example.com")][-1] == (
        "Your Worklane account has been deleted"
    )
