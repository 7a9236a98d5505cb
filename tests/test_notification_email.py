"""Notification email: each member's choice per organization, mail at once or in a daily digest."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.core.queue.queues import HIGH, queued_jobs
from app.core.queue.registry import periodic_jobs
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.issues import services as issues
from app.models import Issue, Membership, Notification, Project, TenantOutboxMail, User
from app.notifications.services import email_preferences
from tests.accounts import add_member, login, make_org, make_user, post_form, sent_mails
from tests.conftest import run_flask
from tests.factories import make_acme


def _mail_jobs(redis_client):
    return [
        job
        for job in queued_jobs(HIGH, redis_client)
        if job.func_name == "app.core.mail_delivery.deliver_outbox_mail"
    ]


def _set_choice(org_id, email, choice):
    with tenant_context(org_id):
        membership = db.session.scalar(
            select(Membership).join(User, User.id == Membership.user_id).where(User.email == email)
        )
        membership.email_notifications = choice
        db.session.flush()


def _user(email) -> User:
    return db.session.scalar(select(User).where(User.email == email))


# --- the choice on the account page ------------------------------------------------------------


@pytest.fixture
def two_orgs(db_session):
    """Grace is a member of Acme and of Beta."""
    grace = make_user("grace@example.com", name="Grace Hopper")
    acme = make_org(make_user("owner@example.com"), "Acme", "acme")
    beta = make_org(make_user("bert@example.com"), "Beta", "beta")
    add_member(acme, grace, "member")
    add_member(beta, grace, "viewer")
    db_session.commit()
    return grace.id, acme.id, beta.id


def test_account_page_offers_a_choice_per_organization_defaulting_to_immediately(client, two_orgs):
    """Each of the person's organizations has its own choice on the account page, "Immediately" at first."""
    _grace_id, acme_id, beta_id = two_orgs
    login(client, "grace@example.com")
    page = client.get("/account").get_data(as_text=True)
    for org_id in (acme_id, beta_id):
        select_html = re.search(rf'<select[^>]*name="notifications-org_{org_id.hex}".*?</select>', page, re.S)
        assert select_html, "one choice per organization"
        assert '<option selected value="immediately">Immediately</option>' in select_html.group(0)
    assert ">Acme</label>" in page and ">Beta</label>" in page


def _save_choices(client, choices: dict):
    """Grace logs in and saves an email choice per organization id on the account page."""
    login(client, "grace@example.com")
    fields = {f"notifications-org_{org_id.hex}": choice for org_id, choice in choices.items()}
    return post_form(client, "/account", "/account/notifications", **fields)


def test_choices_are_saved_per_organization(client, two_orgs):
    """Saving the form stores each organization's choice; the page shows them afterwards."""
    grace_id, acme_id, beta_id = two_orgs
    response = _save_choices(client, {acme_id: "daily", beta_id: "off"})
    assert response.status_code == 303
    choices = {pref.slug: pref.email_notifications for pref in email_preferences(grace_id)}
    assert choices == {"acme": "daily", "beta": "off"}
    page = client.get("/account").get_data(as_text=True)
    assert "Your notification email choices are saved." in page
    assert '<option selected value="daily">Daily digest</option>' in page


def test_an_unknown_choice_is_a_form_error_and_changes_nothing(client, two_orgs):
    """A value outside the three choices answers 422 with a clear message; nothing is saved."""
    grace_id, acme_id, beta_id = two_orgs
    response = _save_choices(client, {acme_id: "weekly", beta_id: "off"})
    assert response.status_code == 422
    assert "Choose immediately, daily digest or off." in response.get_data(as_text=True)
    assert {pref.email_notifications for pref in email_preferences(grace_id)} == {"immediately"}


def test_another_organizations_field_is_ignored(client, two_orgs, db_session):
    """A posted choice for an organization the person is not in changes nobody's membership there."""
    _grace_id, acme_id, beta_id = two_orgs
    other_id = make_org(make_user("carl@example.com"), "Gamma", "gamma").id
    db_session.commit()
    response = _save_choices(client, {acme_id: "immediately", beta_id: "immediately", other_id: "off"})
    assert response.status_code == 303
    with unscoped("test: read Gamma's owner's choice"):
        choices = set(db.session.scalars(select(Membership.email_notifications)))
    assert choices == {"immediately"}


# --- queuing at commit ----------------------------------------------------------------------------


@pytest.fixture
def acme(db_session):
    """Acme with owner Olive and members Grace and Max, and a WEB project."""
    acme = make_acme({"grace@example.com": "member", "max@example.com": "member"})
    db_session.commit()
    return acme.id


def _assign(org_id, email, title="Broken login"):
    with tenant_context(org_id):
        project = db.session.scalars(select(Project)).one()
        return issues.create_issue(project, _user("owner@example.com"), title, assignee_ids=[_user(email).id])


def test_a_notification_is_mailed_through_the_outbox_when_its_change_commits(app, acme, redis_client):
    """Assigning someone writes their mail into the organization's outbox at commit, queued by id."""
    with app.test_request_context():
        _assign(acme, "grace@example.com")
        assert sent_mails(redis_client) == [], "nothing is written before the commit"
        assert _mail_jobs(redis_client) == []
        db.session.commit()
        with tenant_context(acme):
            [notification] = db.session.scalars(select(Notification))
            assert notification.emailed_at is not None
            [row] = db.session.scalars(select(TenantOutboxMail))
    [mail] = sent_mails(redis_client)
    assert mail.to == "grace@example.com"
    [job] = _mail_jobs(redis_client)
    assert job.args == (str(row.id),)
    assert job.meta["tenant_id"] == str(acme)


def test_a_rolled_back_change_queues_no_mail(app, acme, redis_client):
    """A rolled-back notification writes and queues no mail, then or at a later commit."""
    with app.test_request_context():
        _assign(acme, "grace@example.com")
        db.session.rollback()
        db.session.commit()
    assert _mail_jobs(redis_client) == []
    assert sent_mails(redis_client) == []


def test_only_immediately_members_with_unread_notifications_are_mailed_once(app, acme, redis_client):
    """A notification is mailed once; an "off" member and a notification read before the commit get none."""
    from app.notifications.jobs import mail_notifications

    with app.test_request_context():
        _set_choice(acme, "max@example.com", "off")
        first = _assign(acme, "grace@example.com", "Broken login")
        _assign(acme, "max@example.com", "Slow page")
        read = _assign(acme, "grace@example.com", "Typo")
        with tenant_context(acme):
            db.session.scalars(
                select(Notification).where(Notification.issue_id == read.id)
            ).one().read_at = first.created_at
            db.session.flush()
        db.session.commit()
        with tenant_context(acme):
            ids = [str(i) for i in db.session.scalars(select(Notification.id))]
            assert len(ids) == 3
            assert mail_notifications(ids) == 0, "already mailed at the commit"
            emailed = db.session.scalars(
                select(Notification).where(Notification.emailed_at.is_not(None))
            ).all()
    [mail] = sent_mails(redis_client)
    assert mail.to == "grace@example.com"
    assert [n.issue_id for n in emailed] == [first.id]
    assert mail.subject == "[Acme] Olive Owner assigned you to WEB-1: Broken login"
    assert "http://127.0.0.1:5000/acme/issues/WEB-1" in mail.text
    assert 'href="http://127.0.0.1:5000/acme/issues/WEB-1"' in mail.html
    assert "http://127.0.0.1:5000/account" in mail.text


def test_the_daily_digest_is_a_periodic_job():
    """The digest is declared once among the periodic jobs, once a day."""
    [digest] = [job for job in periodic_jobs() if job.func == "app.notifications.jobs.send_daily_digests"]
    assert digest.every_seconds == 24 * 3600


# --- with real workers and the SMTP sink ------------------------------------------------------------


@pytest.fixture
def committed_acme(app, committed_db):
    """Acme committed for worker processes: Olive (owner), Grace (immediately), Max (off), Dora (daily)."""
    with app.app_context():
        acme = make_acme(
            dict.fromkeys(["grace@example.com", "max@example.com", "dora@example.com"], "member")
        )
        _set_choice(acme.id, "max@example.com", "off")
        _set_choice(acme.id, "dora@example.com", "daily")
        db.session.commit()
        return acme.id


def _messages_to(sink, address):
    return [message for message in sink.messages() if message["To"] == address]


@pytest.mark.processes
def test_assignment_mention_and_comment_mail_by_each_members_choice(
    app, committed_acme, migrated_env, smtp_sink
):
    """A real worker mails "immediately" members at once; "off" gets nothing; "daily" waits for the digest."""
    env = {**migrated_env, "SMTP_URL": smtp_sink.url}
    with app.test_request_context():
        olive = _user("owner@example.com")
        with tenant_context(committed_acme):
            project = db.session.scalars(select(Project)).one()
            issue = issues.create_issue(
                project,
                olive,
                "Broken login",
                description="Over to @max and @dora",
                assignee_ids=[_user("grace@example.com").id],
            )
            issues.set_watching(issue, _user("dora@example.com"), True)
            db.session.flush()
        db.session.commit()
        with tenant_context(committed_acme):
            issue = db.session.scalars(select(Issue)).one()
            issues.add_comment(issue, _user("grace@example.com"), "Looking at it now")
        db.session.commit()
    result = run_flask(env, "worker", "--burst")
    assert result.returncode == 0, result.stderr

    [assigned] = _messages_to(smtp_sink, "grace@example.com")
    assert assigned["Subject"] == "[Acme] Olive Owner assigned you to WEB-1: Broken login"
    text = assigned.get_body(("plain",)).get_content()
    assert "http://127.0.0.1:5000/acme/issues/WEB-1" in text
    assert 'href="http://127.0.0.1:5000/acme/issues/WEB-1"' in assigned.get_body(("html",)).get_content()
    assert _messages_to(smtp_sink, "max@example.com") == [], "Max chose off"
    assert _messages_to(smtp_sink, "dora@example.com") == [], "Dora waits for her digest"
    olive_mails = _messages_to(smtp_sink, "owner@example.com")
    assert [m["Subject"] for m in olive_mails] == ["[Acme] Grace Hopper commented on WEB-1: Broken login"]
    assert "Looking at it now" in olive_mails[0].get_body(("plain",)).get_content()

    with app.app_context(), tenant_context(committed_acme):
        rows = db.session.execute(
            select(User.email, Notification.kind, Notification.emailed_at).join(
                User, User.id == Notification.user_id
            )
        ).all()
    emailed = {(email, kind) for email, kind, at in rows if at is not None}
    waiting = {(email, kind) for email, kind, at in rows if at is None}
    assert emailed == {("grace@example.com", "assigned"), ("owner@example.com", "commented")}
    assert waiting == {
        ("max@example.com", "mentioned"),
        ("dora@example.com", "mentioned"),
        ("dora@example.com", "commented"),
    }

    # The digest: one mail to Dora with both items; a second run sends nothing more.
    with app.app_context():
        from app.core.queue.queues import enqueue

        enqueue("app.notifications.jobs.send_daily_digests")
    assert run_flask(env, "worker", "--burst").returncode == 0
    [digest] = _messages_to(smtp_sink, "dora@example.com")
    assert digest["Subject"] == "[Acme] Your daily digest: 2 notifications"
    body = digest.get_body(("plain",)).get_content()
    assert "Olive Owner mentioned you in WEB-1" in body and "Grace Hopper commented on WEB-1" in body
    assert body.count("http://127.0.0.1:5000/acme/issues/WEB-1") == 2
    with app.app_context():
        enqueue("app.notifications.jobs.send_daily_digests")
    assert run_flask(env, "worker", "--burst").returncode == 0
    assert len(_messages_to(smtp_sink, "dora@example.com")) == 1
    assert len(smtp_sink.messages()) == 3


@pytest.mark.parametrize("value", ["worklane.example.com", "ftp://worklane.example.com", "https://"])
def test_a_public_url_that_is_not_a_web_address_is_a_config_error(tmp_path, value):
    """PUBLIC_URL must be an http(s) address: anything else stops the process at start with a reason."""
    from app.config import ConfigError, TestingConfig

    with pytest.raises(ConfigError, match="PUBLIC_URL must be an http"):
        TestingConfig.from_env(
            {
                "WORKLANE_INSTANCE_PATH": str(tmp_path),
                "DATABASE_URL": "sqlite:///unused.db",
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "PUBLIC_URL": value,
            }
        )


def test_public_url_links_follow_the_configured_address(app, monkeypatch):
    """Links in job-written mail use PUBLIC_URL, including a path prefix."""
    from app.core.mail import public_url

    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://work.example.com/lane")
    with app.app_context():
        assert public_url("issues.show", org_slug="acme", issue_ref="WEB-1") == (
            "https://work.example.com/lane/acme/issues/WEB-1"
        )
