"""Fixtures and helpers for people, organizations and their mail (a pytest plugin)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.config import TestingConfig
from app.core.security import hash_password
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Membership, Organization, User
from app.models.base import utcnow
from app.orgs.services import create_organization
from tests.conftest import csrf_token_from
from tests.support.forms import post_forms

PASSWORD = "correct horse battery"


@dataclass
class SentMail:
    to: str
    subject: str
    text: str
    html: str

    def link(self, pattern: str = r"https?://\S+") -> str:
        """The first URL in the text body (matching ``pattern``), as a local path."""
        url = re.search(pattern, self.text).group(0)
        return re.sub(r"^https?://[^/]+", "", url)


def sent_mails(redis_client, to: str | None = None) -> list[SentMail]:
    """Mails the app wrote to the outbox (account mail and every organization's), oldest first.

    ``redis_client`` is unused since mail goes through the database; it stays so the tests
    read the same.
    """
    from app.models import OutboxMail, TenantOutboxMail

    rows = []
    with unscoped("test: every outbox row"):
        for model in (OutboxMail, TenantOutboxMail):
            rows += db.session.scalars(select(model)).all()
    rows.sort(key=lambda row: (row.created_at, row.id))
    return [
        SentMail(row.recipient, row.subject, row.text_body, row.html_body)
        for row in rows
        if to is None or row.recipient == to
    ]


def make_user(email: str | None = None, name: str = "Ada Lovelace", password: str = PASSWORD, verified=True):
    user = User(
        email=email or f"user-{uuid.uuid4().hex[:8]}@example.com",
        name=name,
        password_hash=hash_password(password),
        email_verified_at=utcnow() if verified else None,
    )
    db.session.add(user)
    db.session.flush()
    return user


def make_org(owner: User, name: str = "Acme", slug: str | None = None) -> Organization:
    """An organization on the testing ``DEFAULT_PLAN`` (unlimited: tests build any size; the quota
    tests choose a plan), also when no app context says so."""
    org = create_organization(owner, name, slug or f"org-{uuid.uuid4().hex[:8]}")
    org.plan = TestingConfig.DEFAULT_PLAN
    db.session.flush()
    return org


def add_member(org, user: User, role: str) -> uuid.UUID:
    """Add ``user`` to ``org`` with ``role``; returns the membership's id."""

    with tenant_context(org.id):
        membership = Membership(user_id=user.id, role=role)
        db.session.add(membership)
        db.session.flush()
        return membership.id


def login(client, email: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
            "email": email,
            "password": password,
        },
    )


def browser_login(page, live_server, email: str, password: str = PASSWORD) -> None:
    """Log in on the login page of a real browser; returns once it shows the organization's home."""
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/acme/$"))


def post_form(client, page_url: str, action: str | None = None, **data):
    """Open a page, post its form (to ``action`` or the page itself) with ``data``.

    The form's hidden fields (its CSRF token, the values an edit form was loaded with) are
    sent as rendered, as a browser does, unless ``data`` names them.
    """
    page = client.get(page_url)
    assert page.status_code == 200, (page_url, page.status_code)
    html = page.get_data(as_text=True)
    token = csrf_token_from(html)
    for name in set(re.findall(r'name="([\w-]*csrf_token)"', html)):
        data.setdefault(name, token)
    target = action or page_url
    for form in post_forms(html, page_url):
        if urlsplit(form.action).path == urlsplit(target).path:
            for control in form.controls:
                if control.type == "hidden" and control.name:
                    data.setdefault(control.name, control.attrs.get("value") or "")
            break
    return client.post(target, data=data)


@pytest.fixture
def owner(db_session):
    """A verified user who owns the organization ``org``."""
    return make_user("owner@example.com", name="Olive Owner")


@dataclass(frozen=True)
class OrgRef:
    """What tests need of an organization, safe to use after requests end their sessions."""

    id: uuid.UUID
    slug: str
    name: str


@pytest.fixture
def org(owner, db_session) -> OrgRef:
    """The organization "Acme" (/acme/), owned by ``owner``."""
    org = make_org(owner, "Acme", "acme")
    db_session.commit()
    return OrgRef(org.id, org.slug, org.name)


class TwoFactorClock:
    """The time two-factor codes are checked at (``two_factor.now``), moved by the test."""

    def __init__(self):
        self.now = float(int(time.time()) // 30 * 30 + 5)  # early in a 30-second step

    def __call__(self) -> float:
        return self.now

    def step(self, steps: int = 1) -> None:
        self.now += 30 * steps


@pytest.fixture
def two_factor_clock(monkeypatch) -> TwoFactorClock:
    """The clock two-factor codes are checked by, stopped early in a step and moved by the test."""
    from app.auth import two_factor

    clock = TwoFactorClock()
    monkeypatch.setattr(two_factor, "now", clock)
    return clock


#: The secret and the recovery codes as the two-factor pages show them.
TWO_FACTOR_SECRET_SHOWN = re.compile(r'id="two-factor-secret">([A-Z2-7]+)<')
RECOVERY_CODE_SHOWN = re.compile(r"<li><code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code></li>")


def enrol_two_factor(client, two_factor_clock: TwoFactorClock) -> tuple:
    """Set up two-factor from the account page as a person does; (their app, recovery codes)."""
    started = post_form(client, "/account", "/account/two-factor/start")
    assert started.status_code == 303 and started.headers["Location"] == "/account/two-factor/setup"
    page = client.get("/account/two-factor/setup").get_data(as_text=True)
    assert "<svg" in page  # the QR code
    import pyotp

    app = pyotp.TOTP(TWO_FACTOR_SECRET_SHOWN.search(page).group(1))
    done = post_form(client, "/account/two-factor/setup", code=app.at(two_factor_clock.now))
    assert done.status_code == 200
    codes = RECOVERY_CODE_SHOWN.findall(done.get_data(as_text=True))
    assert len(codes) == 10
    return app, codes
