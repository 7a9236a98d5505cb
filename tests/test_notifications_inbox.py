"""The inbox: pages of notifications with their times, unread or all, marked read one by one or all."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.issues import services as issues
from app.models import Notification, Project, User
from app.models.base import utcnow
from tests.accounts import login
from tests.factories import make_acme, make_beta
from tests.support.forms import parse_forms
from tests.support.statements import Statements

INBOX = "/acme/notifications"
BADGE = re.compile(r'class="bell"[^>]*>Inbox(?: <span class="count">(\d+)</span>)?</a>')
ITEM = re.compile(r'action="/acme/notifications/([0-9a-f-]{36})/read"')


@pytest.fixture
def team(db_session):
    """Acme with Grace (a member) and an issue WEB-1, and Beta beside it."""
    acme = make_acme({"grace@example.com": "member"})
    issue = acme.add_issue("Fix the checkout")
    beta = make_beta(projects=("WEB",))
    beta_issue = beta.add_issue("Beta's own issue")
    ids = {
        "acme": acme.id,
        "beta": beta.id,
        "issue": issue.id,
        "beta_issue": beta_issue.id,
        "grace": acme.people["grace@example.com"].id,
        "owner": acme.owner.id,
        "bert": beta.owner.id,
    }
    db_session.commit()
    return ids


def _notify(db_session, org_id, user_id, issue_id, *, actor_id=None, ago=timedelta(0), read=False, at=None):
    """A notification committed for ``user_id``; returns its id."""
    with tenant_context(org_id):
        created = at or utcnow() - ago
        notification = Notification(
            id=uuid.uuid4(),
            user_id=user_id,
            issue_id=issue_id,
            actor_id=actor_id,
            kind=Notification.COMMENTED,
            excerpt="Looks good to me",
            created_at=created,
            read_at=created if read else None,
        )
        db_session.add(notification)
        db_session.commit()
        return notification.id


def _for_grace(db_session, team, **fields):
    """A notification for Grace about WEB-1 in Acme; returns its id."""
    return _notify(db_session, team["acme"], team["grace"], team["issue"], **fields)


def _grace(app):
    client = app.test_client()
    login(client, "grace@example.com")
    return client


def _page(client, url):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def _shown(html) -> list[uuid.UUID]:
    return [uuid.UUID(found) for found in ITEM.findall(html)]


def _badge(html) -> int:
    match = BADGE.search(html)
    assert match, "the layout has no Inbox link"
    return int(match.group(1) or 0)


def _link(html, name) -> str | None:
    match = re.search(rf'<a class="button button--small" href="([^"]+)">{name}</a>', html)
    return match.group(1).replace("&amp;", "&") if match else None


def _submit(client, html, url, action_path):
    """Submit the page's form whose action is ``action_path`` as a browser does."""
    forms = [f for f in parse_forms(html, url) if urlsplit(f.action).path == action_path]
    assert forms, f"no form posting to {action_path}"
    form = forms[0]
    return client.post(form.action, data=form.values())


def _read_at(db_session, org_id, notification_id):
    db_session.expire_all()
    with tenant_context(org_id):
        return db_session.scalar(select(Notification.read_at).where(Notification.id == notification_id))


def test_pages_show_every_notification_once_newest_first(app, db_session, team):
    """120 notifications (some at the same instant) come in pages of 50, none lost or repeated,
    newest first; Older then Newer walk the same pages back."""
    now = utcnow()
    made = []
    for i in range(120):
        at = now - timedelta(minutes=i // 3)  # threes: ties across a page end
        made.append(_for_grace(db_session, team, at=at, read=i % 3 == 0))
    stamps = [(now - timedelta(minutes=i // 3), made[i]) for i in range(120)]
    expected = [n for _, n in sorted(stamps, reverse=True)]
    grace = _grace(app)

    url, pages = f"{INBOX}?show=all", []
    while url:
        html = _page(grace, url)
        pages.append((url, _shown(html)))
        url = _link(html, "Older")
        assert len(pages) < 10
    assert [len(ids) for _, ids in pages] == [50, 50, 20]
    assert [i for _, ids in pages for i in ids] == expected
    assert _link(_page(grace, pages[0][0]), "Newer") is None

    back = _link(_page(grace, pages[2][0]), "Newer")
    assert _shown(_page(grace, back)) == pages[1][1]
    top = _link(_page(grace, back), "Newer")
    assert _shown(_page(grace, top)) == pages[0][1]
    assert _link(_page(grace, top), "Newer") is None


def test_unread_by_default_all_on_request_with_the_unread_total(app, db_session, team):
    """The inbox shows unread notifications with their total; ?show=all shows the read ones too."""
    unread = [_for_grace(db_session, team, ago=timedelta(minutes=i)) for i in range(3)]
    read = _for_grace(db_session, team, ago=timedelta(hours=2), read=True)
    grace = _grace(app)
    html = _page(grace, INBOX)
    assert _shown(html) == unread
    assert "3 unread" in html
    assert re.search(r'href="/acme/notifications"[^>]*aria-current="page">Unread', html)
    everything = _page(grace, f"{INBOX}?show=all")
    assert _shown(everything) == [*unread, read]
    assert re.search(r'href="/acme/notifications\?show=all"[^>]*aria-current="page">All', everything)


def test_times_are_relative_with_the_exact_time_in_a_datetime(app, db_session, team):
    """Each notification's time is a <time data-relative> with its UTC ISO time, and the exact time
    as its text and title (app.js makes the text relative and the title the person's zone's)."""
    at = (utcnow() - timedelta(hours=3)).replace(microsecond=0)
    _for_grace(db_session, team, actor_id=team["owner"], at=at)
    html = _page(_grace(app), INBOX)
    time = re.search(r'<time datetime="([^"]+)" data-relative title="([^"]+)">([^<]+)</time>', html)
    assert time, "no <time> element"
    assert time.group(1) == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert datetime.fromisoformat(time.group(1)) == at
    assert time.group(2) == time.group(3) == f"{at.day} {at:%b %Y %H:%M} UTC"
    assert "Olive Owner" in html and "Fix the checkout" in html and "Looks good to me" in html


def test_mark_one_read_moves_the_badge_on_the_next_page(app, db_session, team):
    """ "Mark read" marks that one only, keeps the person on the inbox, and the badge drops at once."""
    first = _for_grace(db_session, team, ago=timedelta(minutes=5))
    second = _for_grace(db_session, team)
    grace = _grace(app)
    html = _page(grace, INBOX)
    assert _badge(html) == 2
    response = _submit(grace, html, INBOX, f"{INBOX}/{first}/mark-read")
    assert response.status_code == 303 and response.headers["Location"] == INBOX
    after = _page(grace, INBOX)
    assert _badge(after) == 1
    assert _shown(after) == [second]
    assert _read_at(db_session, team["acme"], first) is not None
    assert _read_at(db_session, team["acme"], second) is None


def test_mark_read_returns_to_the_same_filter_and_page(app, db_session, team):
    """Marking one read on an older page of "All" comes back to that very page."""
    ids = [_for_grace(db_session, team, ago=timedelta(minutes=i)) for i in range(55)]
    grace = _grace(app)
    older = _link(_page(grace, f"{INBOX}?show=all"), "Older")
    html = _page(grace, older)
    assert _shown(html) == ids[50:]
    response = _submit(grace, html, older, f"{INBOX}/{ids[52]}/mark-read")
    assert response.status_code == 303 and response.headers["Location"] == older
    after = _page(grace, older)
    assert _shown(after) == ids[50:] and 'aria-label="Mark read: WEB-1"' in after
    assert after.count('aria-label="Mark read: WEB-1"') == 4
    assert _badge(after) == 54


def test_opening_marks_read_and_shows_the_issue(app, db_session, team):
    """Opening a notification (a POST from its link) marks it read and goes to its issue."""
    only = _for_grace(db_session, team)
    grace = _grace(app)
    html = _page(grace, INBOX)
    response = _submit(grace, html, INBOX, f"{INBOX}/{only}/read")
    assert response.status_code == 303 and response.headers["Location"] == "/acme/issues/WEB-1"
    assert _badge(_page(grace, "/acme/issues/WEB-1")) == 0
    assert grace.get(f"{INBOX}/{only}/read").status_code == 405  # a GET changes nothing


def test_mark_all_read_spares_a_notification_that_came_after_the_page(app, db_session, team):
    """ "Mark all as read" marks what the page knew of, on every page, not one that arrived since."""
    seen = [_for_grace(db_session, team, ago=timedelta(minutes=i)) for i in range(60)]
    grace = _grace(app)
    html = _page(grace, INBOX)
    assert _badge(html) == 60
    later = _for_grace(db_session, team)
    response = _submit(grace, html, INBOX, f"{INBOX}/read-all")
    assert response.status_code == 303
    after = _page(grace, INBOX)
    assert _badge(after) == 1
    assert _shown(after) == [later]
    assert all(_read_at(db_session, team["acme"], n) is not None for n in seen)


def test_mark_all_read_needs_its_csrf_token(app, db_session, team):
    """A "mark all" post without the page's CSRF token is refused and marks nothing."""
    only = _for_grace(db_session, team)
    grace = _grace(app)
    assert grace.post(f"{INBOX}/read-all").status_code == 400
    assert _read_at(db_session, team["acme"], only) is None


def test_another_persons_or_organizations_notifications_are_neither_shown_nor_markable(app, db_session, team):
    """Olive's inbox never shows Grace's notifications, and neither hers nor Beta's can be marked (404)."""
    graces = _for_grace(db_session, team)
    betas = _notify(db_session, team["beta"], team["bert"], team["beta_issue"])
    _notify(db_session, team["acme"], team["owner"], team["issue"])
    olive = app.test_client()
    login(olive, "owner@example.com")
    html = _page(olive, f"{INBOX}?show=all")
    assert graces not in _shown(html) and betas not in _shown(html) and len(_shown(html)) == 1
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    for other in (graces, betas):
        for action in ("read", "mark-read"):
            assert olive.post(f"{INBOX}/{other}/{action}", data={"csrf_token": token}).status_code == 404
    assert olive.post(f"{INBOX}/read-all", data={"csrf_token": token}).status_code == 303
    assert _read_at(db_session, team["acme"], graces) is None
    assert _read_at(db_session, team["beta"], betas) is None


@pytest.mark.parametrize(
    "query",
    ["show=everything", "before=yesterday", "after=1-abc", f"before=1-{'0' * 32}&after=1-{'0' * 32}"],
)
def test_a_bad_filter_or_page_is_a_clear_400(app, db_session, team, query):
    """An unknown filter or a page cursor the inbox did not write is refused with a reason, not a 500."""
    response = _grace(app).get(f"{INBOX}?{query}")
    assert response.status_code == 400


def test_a_page_sends_as_many_statements_for_fifty_issues_as_for_one(app, db_session, team):
    """Each notification's issue, project and actor come with the page's query, not one query each."""
    _for_grace(db_session, team)
    grace = _grace(app)
    _page(grace, INBOX)
    with Statements(app) as one:
        _page(grace, INBOX)
    with tenant_context(team["acme"]):
        project = db_session.scalars(select(Project)).one()
        owner = db_session.get(User, team["owner"])
        made = [issues.create_issue(project, owner, f"Issue {i}") for i in range(49)]
        db_session.commit()
        issue_ids = [issue.id for issue in made]
    for issue_id in issue_ids:
        _notify(db_session, team["acme"], team["grace"], issue_id, actor_id=team["owner"])
    _page(grace, INBOX)
    with Statements(app) as fifty:
        html = _page(grace, INBOX)
    assert len(_shown(html)) == 50
    assert len(fifty.sent) == len(one.sent)
