"""Dates and times: one format everywhere, each person's time zone (account page, sign-up, e-mail),
and pages the cache shares between people carrying no one's zone."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.core.dates import (
    format_date,
    format_datetime,
    is_time_zone,
    time_element,
    time_zone_names,
    time_zone_or_default,
)
from app.core.tenancy import tenant_context
from app.extensions import db
from app.issues import services as issues
from app.models import Notification, Project, User
from tests.accounts import PASSWORD, login, post_form, sent_mails
from tests.factories import OWNER, make_acme

MOMENT = datetime(2026, 3, 5, 23, 7, 30, tzinfo=UTC)
TIME = re.compile(r"<time[^>]*>[^<]*</time>")


def _user(email: str) -> User:
    db.session.expire_all()
    return db.session.scalars(select(User).where(User.email == email)).one()


# --- the one format ---------------------------------------------------------------------------


def test_a_date_and_a_moment_have_one_format_each():
    """A date reads "5 Mar 2026"; a moment "5 Mar 2026 23:07 UTC", or in a zone, named."""
    assert format_date(date(2026, 3, 5)) == "5 Mar 2026"
    assert format_date(None) == ""
    assert format_datetime(MOMENT) == "5 Mar 2026 23:07 UTC"
    assert format_datetime(MOMENT, "Asia/Tokyo") == "6 Mar 2026 08:07 Asia/Tokyo"
    assert format_datetime(MOMENT, "America/New_York") == "5 Mar 2026 18:07 America/New_York"
    assert format_datetime(MOMENT.replace(tzinfo=None)) == "5 Mar 2026 23:07 UTC", "naive is UTC"
    assert format_datetime(MOMENT, "Mars/Olympus") == "5 Mar 2026 23:07 UTC", "an unknown zone is UTC"


def test_a_moment_on_a_page_is_a_time_element_in_utc_for_the_script():
    """|when writes <time datetime="…Z" data-relative title="exact">exact</time>, the same for anyone."""
    assert str(time_element(MOMENT, "muted")) == (
        '<time class="muted" datetime="2026-03-05T23:07:30Z" data-relative '
        'title="5 Mar 2026 23:07 UTC">5 Mar 2026 23:07 UTC</time>'
    )
    tokyo = MOMENT.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert str(time_element(tokyo)) == str(time_element(MOMENT))
    assert time_element(None) == ""


def test_time_zones_are_the_iana_names():
    """Every zoneinfo place is offered; anything else is not a zone (and falls back to UTC)."""
    names = time_zone_names()
    assert {"UTC", "Asia/Tokyo", "Europe/Paris", "America/Argentina/Buenos_Aires"} <= set(names)
    assert names == tuple(sorted(names)) and "localtime" not in names
    for bad in ("", None, "Mars/Olympus", "asia/tokyo", "UTC; DROP", "localtime"):
        assert not is_time_zone(bad)
        assert time_zone_or_default(bad) == "UTC"
    assert time_zone_or_default(" Asia/Tokyo ") == "Asia/Tokyo"


def test_no_template_formats_a_date_itself():
    """Templates write dates and times only through the filters (no strftime or isoformat)."""
    from app.config import PROJECT_ROOT

    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for path in (PROJECT_ROOT / "templates").rglob("*.*")
        if re.search(r"strftime|isoformat|time_ago|exact_time", path.read_text())
    ]
    assert offenders == []


# --- the account page ----------------------------------------------------------------------------


@pytest.fixture
def acme(db_session):
    acme = make_acme({"grace@example.com": "member"})
    issue = acme.add_issue("Broken login")
    with tenant_context(acme.id):
        issue.created_at = issue.updated_at = MOMENT
        db_session.flush()
    db_session.commit()
    return acme.id


def test_the_account_page_sets_the_time_zone(client, acme):
    """The account page offers every zone, the person's own selected; saving one stores it."""
    login(client, OWNER)
    page = client.get("/account").get_data(as_text=True)
    assert '<option selected value="UTC">UTC</option>' in page
    assert '<option value="America/Argentina/Buenos_Aires">America/Argentina/Buenos Aires</option>' in page
    assert '<html lang="en" data-time-zone="UTC">' in page
    response = post_form(client, "/account", "/account/time-zone", **{"zone-time_zone": "Asia/Tokyo"})
    assert response.status_code == 303
    assert _user(OWNER).time_zone == "Asia/Tokyo"
    page = client.get("/account").get_data(as_text=True)
    assert "Times are now shown in Asia/Tokyo." in page
    assert '<option selected value="Asia/Tokyo">Asia/Tokyo</option>' in page
    assert '<html lang="en" data-time-zone="Asia/Tokyo">' in page


@pytest.mark.parametrize("value", ["Mars/Olympus", "", "asia/tokyo", "x" * 300])
def test_an_unknown_time_zone_is_a_form_error(client, acme, value):
    """A zone not in the list answers 422 with a clear message and changes nothing."""
    login(client, OWNER)
    response = post_form(client, "/account", "/account/time-zone", **{"zone-time_zone": value})
    assert response.status_code == 422
    assert "Choose a time zone from the list." in response.get_data(as_text=True)
    assert _user(OWNER).time_zone == "UTC"


# --- sign-up, with the browser's zone ----------------------------------------------------------


def _sign_up(client, email: str, zone: str):
    return post_form(
        client,
        "/signup",
        name="Zed Zone",
        email=email,
        password=PASSWORD,
        organization="Zone Co",
        time_zone=zone,
    )


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("Asia/Tokyo", "Asia/Tokyo"), ("", "UTC"), ("Mars/Olympus", "UTC"), ("Etc/GMT+5", "Etc/GMT+5")],
)
def test_sign_up_keeps_the_browsers_time_zone_when_valid(client, db_session, redis_client, sent, stored):
    """The sign-up form's hidden zone (filled by app.js) becomes the account's; else UTC."""
    assert '<input data-browser-time-zone id="time_zone" name="time_zone" type="hidden"' in client.get(
        "/signup"
    ).get_data(as_text=True)
    assert _sign_up(client, "zed@example.com", sent).status_code == 303
    assert _user("zed@example.com").time_zone == stored


def test_an_invited_sign_up_keeps_the_browsers_time_zone(app, client, db_session, redis_client, acme):
    """Joining through an invitation's sign-up stores the browser's zone too."""
    login(client, OWNER)
    post_form(client, "/acme/members", "/acme/invitations", email="new@example.com", role="member")
    link = sent_mails(redis_client, "new@example.com")[-1].link()
    guest = app.test_client()
    assert '<input data-browser-time-zone id="time_zone" name="time_zone" type="hidden"' in guest.get(
        link + "/signup"
    ).get_data(as_text=True)
    joined = post_form(guest, link + "/signup", name="Nina New", password=PASSWORD, time_zone="Europe/Paris")
    assert joined.status_code == 303
    assert _user("new@example.com").time_zone == "Europe/Paris"


# --- cached pages carry no one's zone --------------------------------------------------------------


def test_people_in_different_zones_get_the_same_shared_parts(app, acme):
    """The issue page and the list (cached per organization) hold the same UTC <time>s for two people
    in different zones; only each person's own <html> names their zone, for the script."""
    zones = {OWNER: "Asia/Tokyo", "grace@example.com": "America/New_York"}
    for user in db.session.scalars(select(User).where(User.email.in_(zones))):
        user.time_zone = zones[user.email]
    db.session.commit()
    seen = {}
    for email, zone in zones.items():
        client = app.test_client()
        login(client, email)
        pages = [client.get(url).get_data(as_text=True) for url in ("/acme/issues/WEB-1", "/acme/issues")]
        for html in pages:
            assert f'<html lang="en" data-time-zone="{zone}">' in html
            assert not any(name in html for name in ("Asia/Tokyo", "America/New_York") if name != zone)
        seen[email] = [TIME.findall(html) for html in pages]
    assert seen[OWNER] == seen["grace@example.com"]
    issue_times, list_times = seen[OWNER]
    created = '<time datetime="2026-03-05T23:07:30Z" data-relative title="5 Mar 2026 23:07 UTC">'
    assert any(t.startswith(created) for t in issue_times)
    assert any(t.startswith(created) for t in list_times)


# --- e-mail, in the recipient's zone ---------------------------------------------------------------


def test_notification_mail_shows_its_time_in_the_recipients_zone(app, acme, redis_client):
    """A notification mailed at once says when it happened, in the recipient's time zone."""
    with app.test_request_context():
        _user("grace@example.com").time_zone = "Asia/Kolkata"
        with tenant_context(acme):
            project = db.session.scalars(select(Project)).one()
            issues.create_issue(
                project, _user(OWNER), "Slow page", assignee_ids=[_user("grace@example.com").id]
            )
        db.session.commit()
        with tenant_context(acme):
            [notification] = db.session.scalars(select(Notification))
            when = format_datetime(notification.created_at, "Asia/Kolkata")
    [mail] = sent_mails(redis_client, "grace@example.com")
    assert when.endswith(" Asia/Kolkata")
    assert f"({when})" in mail.text and f"({when})" in mail.html


def test_the_digest_shows_each_time_in_the_recipients_zone(app, acme, redis_client):
    """Each item of the daily digest says when it happened, in the recipient's zone."""
    from app.models import Membership
    from app.notifications.jobs import send_daily_digests

    with app.test_request_context():
        grace = _user("grace@example.com")
        grace.time_zone = "America/Los_Angeles"
        with tenant_context(acme):
            db.session.scalars(
                select(Membership).where(Membership.user_id == grace.id)
            ).one().email_notifications = "daily"
            project = db.session.scalars(select(Project)).one()
            issues.create_issue(project, _user(OWNER), "Slow page", assignee_ids=[grace.id])
        db.session.commit()
        with tenant_context(acme):
            [notification] = db.session.scalars(select(Notification))
            notification.created_at = datetime.now(UTC) - timedelta(hours=2)
            when = format_datetime(notification.created_at, "America/Los_Angeles")
            db.session.commit()
        assert send_daily_digests() == 1
    [mail] = sent_mails(redis_client, "grace@example.com")
    assert f"({when})" in mail.text and f"· {when}" in mail.html
