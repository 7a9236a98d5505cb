"""An organization's single sign-on settings without a provider: who may open them, the checks
of the issuer URL, the email domains proven by DNS, and where "Continue with SSO" leads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select, text

from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import AuditEvent, SsoConnection, SsoDomain, VerifiedDomain
from app.models.base import utcnow
from app.sso import clients
from tests.accounts import login, post_form
from tests.conftest import free_port
from tests.factories import OWNER, make_acme, make_beta

SETTINGS = "/acme/settings/sso"


@pytest.fixture
def teams(db_session):
    """Acme (owner Olive, admin Ada, member Grace) and Beta (owner Bert)."""
    acme = make_acme({"ada@example.com": "admin", "grace@example.com": "member"})
    beta = make_beta()
    db_session.commit()
    return SimpleNamespace(acme=acme.id, beta=beta.id)


def _actions(org_id) -> list[str]:
    with tenant_context(org_id):
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.sequence)))


def _domain(org_id, name: str) -> SimpleNamespace | None:
    """The organization's row for ``name``, as values (id, token, verified_at)."""
    with tenant_context(org_id):
        row = db.session.scalar(select(SsoDomain).where(SsoDomain.domain == name))
        return SimpleNamespace(id=row.id, token=row.token, verified_at=row.verified_at) if row else None


def test_only_owners_and_admins_open_the_settings(app, client, teams):
    """Admins see the settings (the redirect URI to register included); members get 403; the
    organization's settings page links to them."""
    login(client, "ada@example.com")
    page = client.get(SETTINGS)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://127.0.0.1:5000/sso/acme/callback" in html or "/sso/acme/callback" in html
    assert 'href="/acme/settings/sso"' in client.get("/acme/settings").get_data(as_text=True)
    settings = client.get("/acme/settings").get_data(as_text=True)
    assert (
        '<div class="field field--checkbox">\n    <label for="policy-required"><input' in settings
    )  # box in label
    member = app.test_client()
    login(member, "grace@example.com")
    assert member.get(SETTINGS).status_code == 403
    assert 'href="/acme/settings/sso"' not in member.get("/acme/settings").get_data(as_text=True)


def test_an_unreachable_provider_is_saved_with_its_problem_and_cannot_be_turned_on(
    app, client, db_session, teams
):
    """A connection whose issuer answers nothing is kept (off), the page says why, and turning
    it on is refused until a check reads the provider."""
    login(client, OWNER)
    issuer = f"http://127.0.0.1:{free_port()}"
    saved = post_form(
        client,
        SETTINGS,
        "/acme/settings/sso/connection",
        **{
            "connection-issuer": issuer,
            "connection-client_id": "worklane",
            "connection-client_secret": "s3cret",
        },
    )
    assert saved.status_code == 303
    page = client.get(SETTINGS).get_data(as_text=True)
    assert "could not be read (no connection)" in page
    refused = post_form(client, SETTINGS, "/acme/settings/sso/enable")
    assert refused.status_code == 303
    assert "Check the connection first" in client.get(SETTINGS).get_data(as_text=True)
    with app.app_context(), tenant_context(teams.acme):
        connection = db.session.scalar(select(SsoConnection))
        assert connection.enabled_at is None and connection.check_problem
        assert connection.client_secret == "s3cret"
        raw = db.session.execute(text("SELECT client_secret FROM sso_connections")).scalar_one()
    assert "s3cret" not in raw  # encrypted at rest
    assert "sso.configured" in _actions(teams.acme)


def test_the_client_secret_is_kept_when_left_empty_and_a_change_makes_a_new_client(
    app, client, db_session, teams
):
    """Saving again without a secret keeps the stored one and the client's version; a new secret
    moves the version, so the cached Authlib client of the old configuration is never used."""
    login(client, OWNER)
    issuer = f"http://127.0.0.1:{free_port()}"
    fields = {"connection-issuer": issuer, "connection-client_id": "worklane"}
    post_form(
        client, SETTINGS, "/acme/settings/sso/connection", **fields, **{"connection-client_secret": "one"}
    )
    post_form(client, SETTINGS, "/acme/settings/sso/connection", **fields)
    with app.app_context(), tenant_context(teams.acme):
        connection = db.session.scalar(select(SsoConnection))
        assert (connection.client_secret, connection.version) == ("one", 1)
        first = clients.client_name(connection)
    post_form(
        client, SETTINGS, "/acme/settings/sso/connection", **fields, **{"connection-client_secret": "two"}
    )
    with app.app_context(), tenant_context(teams.acme):
        connection = db.session.scalar(select(SsoConnection))
        assert (connection.client_secret, connection.version) == ("two", 2)
        assert clients.client_name(connection) != first


@pytest.mark.parametrize(
    ("issuer", "refusal"),
    [
        ("http://login.example.com", "must be reached over HTTPS"),
        ("http://127.0.0.1:9", "must be reached over HTTPS"),
        ("https://127.0.0.1", "private or local address"),
        ("https://localhost", "private or local address"),
        ("https://10.1.2.3", "private or local address"),
        ("https://169.254.169.254", "private or local address"),
        ("https://[::ffff:127.0.0.1]", "private or local address"),
        ("https://2130706433", "private or local address"),
        ("https://no-such-name.invalid", "does not resolve"),
        ("https://user:pw@login.example.com", "may not carry"),
        ("ftp://login.example.com", "starting with https://"),
    ],
)
def test_production_refuses_issuers_on_private_addresses(app, monkeypatch, issuer, refusal):
    """Where private issuers are not allowed (production), the server never fetches a provider
    on a loopback, private, link-local, metadata or IPv4-mapped address, nor over plain HTTP."""
    monkeypatch.setitem(app.config, "SSO_ALLOW_PRIVATE_ISSUERS", False)
    with app.test_request_context():
        problem = clients.public_url_problem(issuer)
    assert problem is not None and refusal in problem


def test_a_domain_is_verified_by_its_dns_record_and_held_by_one_organization(
    app, client, db_session, teams, dns_records
):
    """Acme adds example.com, is refused until its TXT record is published, then holds it; Beta,
    with its own record published, cannot prove it too; once Acme removes it, Beta can."""
    login(client, OWNER)
    added = post_form(client, SETTINGS, "/acme/settings/sso/domains", **{"domain-domain": "Example.COM"})
    assert added.status_code == 303
    row = _domain(teams.acme, "example.com")
    page = client.get(SETTINGS).get_data(as_text=True)
    assert (
        "_worklane-verification.example.com" in page and f"worklane-domain-verification={row.token}" in page
    )

    verify = f"/acme/settings/sso/domains/{row.id}/verify"
    post_form(client, SETTINGS, verify)
    assert "No TXT record" in client.get(SETTINGS).get_data(as_text=True)
    assert _domain(teams.acme, "example.com").verified_at is None

    dns_records.set_txt(
        "_worklane-verification.example.com", "v=spf1 -all", f"worklane-domain-verification={row.token}"
    )
    post_form(client, SETTINGS, verify)
    db_session.expire_all()
    assert _domain(teams.acme, "example.com").verified_at is not None
    assert db_session.get(VerifiedDomain, "example.com").org_id == teams.acme
    assert {"sso.domain_added", "sso.domain_verified"} <= set(_actions(teams.acme))

    bert = app.test_client()
    login(bert, "bert@example.com")
    post_form(bert, "/beta/settings/sso", "/beta/settings/sso/domains", **{"domain-domain": "example.com"})
    theirs = _domain(teams.beta, "example.com")
    dns_records.set_txt("_worklane-verification.example.com", f"worklane-domain-verification={theirs.token}")
    post_form(bert, "/beta/settings/sso", f"/beta/settings/sso/domains/{theirs.id}/verify")
    assert "already proven by another organization" in bert.get("/beta/settings/sso").get_data(as_text=True)

    remove = f"/acme/settings/sso/domains/{row.id}/remove"
    assert "Remove example.com?" in client.get(remove).get_data(as_text=True)
    assert post_form(client, remove).status_code == 303
    post_form(bert, "/beta/settings/sso", f"/beta/settings/sso/domains/{theirs.id}/verify")
    db_session.expire_all()
    assert db_session.get(VerifiedDomain, "example.com").org_id == teams.beta


def test_bad_domains_get_a_message_on_the_form(client, db_session, teams):
    """A domain without a dot, an address's domain, a duplicate: each is answered on the form."""
    login(client, OWNER)
    action = "/acme/settings/sso/domains"
    refused = post_form(client, SETTINGS, action, **{"domain-domain": "localhost"})
    assert refused.status_code == 422 and "is not a domain name like example.com" in refused.get_data(
        as_text=True
    )
    assert post_form(client, SETTINGS, action, **{"domain-domain": "ada@acme.example"}).status_code == 303
    assert _domain(teams.acme, "acme.example") is not None
    again = post_form(client, SETTINGS, action, **{"domain-domain": "ACME.example"})
    assert again.status_code == 422 and "already on the list" in again.get_data(as_text=True)


def test_continue_with_sso_finds_the_organization_by_email_domain_or_address(app, client, db_session, teams):
    """From /sso, an address at a domain Acme proved, or Acme's address, leads to Acme's sign-in;
    anything else is answered on the form."""
    with app.app_context(), tenant_context(teams.acme):
        db_session.add(
            SsoConnection(
                issuer="https://login.acme.example", client_id="w", client_secret="s", enabled_at=utcnow()
            )
        )
        db_session.commit()  # before the app context ends, which removes the session
    with unscoped("test: a proven domain"):
        db_session.add(VerifiedDomain(domain="acme.example", org_id=teams.acme))
        db_session.flush()
    db_session.commit()
    by_email = post_form(client, "/sso", **{"address": "Someone@ACME.example"})
    assert by_email.status_code == 200 and 'content="0; url=/sso/acme/start' in by_email.get_data(
        as_text=True
    )
    by_slug = post_form(client, "/sso", **{"address": "acme"})
    assert 'href="/sso/acme/start' in by_slug.get_data(as_text=True)
    unknown = post_form(client, "/sso", **{"address": "someone@elsewhere.example"})
    assert unknown.status_code == 422 and "No organization signs in with single sign-on" in unknown.get_data(
        as_text=True
    )
    beta = post_form(client, "/sso", **{"address": "beta"})
    assert beta.status_code == 422  # Beta has no single sign-on
    assert client.get("/sso/beta/start").status_code == 404
