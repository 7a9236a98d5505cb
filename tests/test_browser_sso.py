"""Single sign-on in a real browser, against the real OpenID Provider the test command runs:
a newcomer continues with SSO from the login page and joins; a member who used only her password
is stopped by enforcement and let in after the provider."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Membership, Organization, SsoConnection, SsoIdentity, User, VerifiedDomain
from app.models.base import utcnow
from tests.accounts import browser_login
from tests.factories import make_acme

pytestmark = [pytest.mark.browser, pytest.mark.processes]


@pytest.fixture
def sso_acme(app, live_server, openid_provider, monkeypatch):
    """Acme (member Grace at grace@acme.example), signing in through the provider, with the
    domain acme.example proven; links in the app point at the live server."""
    monkeypatch.setitem(app.config, "PUBLIC_URL", live_server.url)
    client = openid_provider.register_client([f"{live_server.url}/sso/acme/callback"])
    with app.app_context():
        org_id = make_acme({"grace@acme.example": "member"}).id
        db.session.commit()
        with tenant_context(org_id):
            db.session.add(
                SsoConnection(
                    issuer=openid_provider.issuer,
                    client_id=client.client_id,
                    client_secret=client.client_secret,
                    checked_at=utcnow(),
                    checked_version=1,
                    enabled_at=utcnow(),
                )
            )
            db.session.commit()
        with unscoped("test: a proven domain"):
            db.session.add(VerifiedDomain(domain="acme.example", org_id=org_id))
            db.session.commit()
    return org_id


def test_a_newcomer_continues_with_sso_from_the_login_page_and_joins(
    page, app, live_server, openid_provider, sso_acme
):
    """From the login page, "Continue with SSO" with a work address leads to the provider; after
    signing in there, Nora is in Acme as a new member."""
    page.goto(f"{live_server.url}/login")
    page.get_by_role("link", name="Continue with SSO").click()
    page.get_by_label("Work email or organization address").fill("nora@acme.example")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(re.escape(openid_provider.issuer)))
    openid_provider.browser_sign_in(page, "nora@acme.example")
    page.wait_for_url(f"{live_server.url}/acme/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme")
    assert page.problems == []
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "nora@acme.example"))
        with tenant_context(sso_acme):
            assert db.session.scalar(select(Membership.role).where(Membership.user_id == user.id)) == "member"


def test_enforced_sso_stops_a_password_only_member_until_the_provider_lets_her_in(
    page, app, live_server, openid_provider, sso_acme
):
    """With single sign-on enforced, Grace's password opens her account but Acme's pages ask for
    the provider; after it she is on the page she wanted."""
    with app.app_context():
        with unscoped("test: enforce"):
            db.session.get(Organization, sso_acme).sso_enforced_at = utcnow()
        grace = db.session.scalar(select(User).where(User.email == "grace@acme.example"))
        with tenant_context(sso_acme):
            db.session.add(
                SsoIdentity(
                    issuer=openid_provider.issuer,
                    subject="grace@acme.example",
                    user_id=grace.id,
                    email=grace.email,
                )
            )
            db.session.flush()
        db.session.commit()
    browser_login(page, live_server, "grace@acme.example")
    page.goto(f"{live_server.url}/acme/issues")
    expect(page.get_by_role("heading", name="Single sign-on required")).to_be_visible()
    page.get_by_role("link", name="Continue with SSO").click()
    page.wait_for_url(re.compile(re.escape(openid_provider.issuer)))
    openid_provider.browser_sign_in(page, "grace@acme.example")
    page.wait_for_url(f"{live_server.url}/acme/issues")
    expect(page.get_by_role("heading", name="Single sign-on required")).to_have_count(0)
    assert [problem for problem in page.problems if "status of 403" not in problem] == []  # the page asking
