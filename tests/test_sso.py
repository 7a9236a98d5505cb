"""Signing in through an organization's OpenID Provider, against a real provider (panva's
oidc-provider, run by the test command): set-up through the settings forms, a trial sign-in,
just-in-time provisioning limited to proven domains, an existing account linked only by a mailed
link, enforcement with break-glass, and the refusals of tokens a hostile provider could send."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from app.auth import sso_session
from app.core.mail import public_url
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import AuditEvent, Membership, Organization, SsoConnection, SsoIdentity, User
from app.plans import catalog
from app.sso import clients
from tests.accounts import PASSWORD, login, post_form, sent_mails
from tests.conftest import free_port
from tests.factories import OWNER, make_acme

pytestmark = pytest.mark.processes

SETTINGS = "/acme/settings/sso"


@pytest.fixture
def acme(db_session):
    """Acme: owner Olive (owner@example.com), member Grace (grace@acme.example)."""
    acme = make_acme({"grace@acme.example": "member"})
    db_session.commit()
    return SimpleNamespace(id=acme.id)


@pytest.fixture
def provider(tamperable_openid_provider, app):
    """The provider, with a client registered for Acme's redirect URI."""
    with app.test_request_context():
        callback = public_url("sso.callback", slug="acme")
    client = tamperable_openid_provider.register_client([callback])
    return SimpleNamespace(op=tamperable_openid_provider, client=client)


def configure(owner_client, provider, role: str = "member", enable: bool = True):
    """Set Acme's provider up through the settings forms, as an admin does."""
    saved = post_form(
        owner_client,
        SETTINGS,
        f"{SETTINGS}/connection",
        **{
            "connection-issuer": provider.op.discovery_url,
            "connection-client_id": provider.client.client_id,
            "connection-client_secret": provider.client.client_secret,
            "connection-default_role": role,
        },
    )
    assert saved.status_code == 303
    if enable:
        assert post_form(owner_client, SETTINGS, f"{SETTINGS}/enable").status_code == 303
        assert "<strong>On</strong>" in owner_client.get(SETTINGS).get_data(as_text=True)


def prove_domain(owner_client, dns_records, domain: str) -> None:
    """Add ``domain``, publish its TXT record, and verify it through the settings page."""
    post_form(owner_client, SETTINGS, f"{SETTINGS}/domains", **{"domain-domain": domain})
    html = owner_client.get(SETTINGS).get_data(as_text=True)
    value = html.split("worklane-domain-verification=", 1)[1].split("<", 1)[0]
    dns_records.set_txt(f"_worklane-verification.{domain}", f"worklane-domain-verification={value}")
    verify = html.split(f'action="{SETTINGS}/domains/', 1)[1].split('"', 1)[0]
    post_form(owner_client, SETTINGS, f"{SETTINGS}/domains/{verify}")
    assert "Verified" in owner_client.get(SETTINGS).get_data(as_text=True)


def provider_answer(client, provider, login_name: str, start: str = "/sso/acme/start") -> str:
    """Start at ``start``, sign in at the provider as ``login_name``; the callback URL (path and query)."""
    begun = client.get(start)
    assert begun.status_code == 302, begun.get_data(as_text=True)
    assert provider.op.owns(begun.headers["Location"])
    back = urlsplit(provider.op.sign_in(begun.headers["Location"], login_name))
    return f"{back.path}?{back.query}"


def sso_sign_in(client, provider, login_name: str, start: str = "/sso/acme/start"):
    return client.get(provider_answer(client, provider, login_name, start))


def _actions(org_id) -> list[str]:
    with tenant_context(org_id):
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.sequence)))


def _signed_in(client) -> bool:
    return client.get("/account").status_code == 200


def link_by_mail(client, provider, login_name: str):
    """Sign in as an existing account's address and open the mailed link; the link's answer."""
    answer = sso_sign_in(client, provider, login_name)
    assert answer.status_code == 200 and "Check your email" in answer.get_data(as_text=True)
    link = sent_mails(None, to=login_name)[-1].link(r"https?://\S+/sso/link/\S+")
    path = urlsplit(link).path
    return post_form(client, path)


def test_an_admin_sets_up_sso_tries_it_and_turns_it_on(app, client, db_session, acme, provider):
    """Saved through the form (the discovery URL accepted for the issuer), the connection reads the
    provider; a trial sign-in shows who the provider says the admin is and changes nothing; then
    it is on, and the audit log has each step."""
    login(client, OWNER)
    configure(client, provider, enable=False)
    page = client.get(SETTINGS).get_data(as_text=True)
    assert "the discovery document and keys were read" in page
    trial = sso_sign_in(client, provider, "olive@idp.example", start="/sso/acme/start?trial=1")
    assert trial.status_code == 200
    text = trial.get_data(as_text=True)
    assert "Single sign-on works" in text and "olive@idp.example" in text and "confirmed" in text
    assert (
        db_session.scalar(select(func.count()).select_from(User).where(User.email == "olive@idp.example"))
        == 0
    )
    assert client.get("/sso/acme/start").status_code == 404  # not on yet
    assert post_form(client, SETTINGS, f"{SETTINGS}/enable").status_code == 303
    assert client.get("/sso/acme/start").status_code == 302
    with app.app_context(), tenant_context(acme.id):
        connection = db.session.scalar(select(SsoConnection))
        assert connection.issuer == provider.op.issuer and connection.enabled_at is not None
    assert {"sso.configured", "sso.enabled"} <= set(_actions(acme.id))


def test_a_new_person_at_a_proven_domain_joins_with_the_default_role(
    app, client, db_session, acme, provider, dns_records
):
    """Someone new, whose provider confirms an address at Acme's proven domain, joins on their
    first sign-in with the configured role, lands in Acme, and comes back as the same person."""
    login(client, OWNER)
    configure(client, provider, role="viewer")
    prove_domain(client, dns_records, "acme.example")

    newcomer = app.test_client()
    landed = sso_sign_in(newcomer, provider, "nora@acme.example")
    assert landed.status_code == 303 and landed.headers["Location"] == "/acme/"
    assert newcomer.get("/acme/").status_code == 200
    user = db_session.scalar(select(User).where(User.email == "nora@acme.example"))
    assert user is not None and user.email_verified_at is not None and user.name == "Nora"
    with tenant_context(acme.id):
        assert db_session.scalar(select(Membership.role).where(Membership.user_id == user.id)) == "viewer"
    assert {"sso.provisioned", "sso.signed_in"} <= set(_actions(acme.id))

    again = app.test_client()
    assert sso_sign_in(again, provider, "nora@acme.example").status_code == 303
    assert (
        db_session.scalar(select(func.count()).select_from(User).where(User.email == "nora@acme.example"))
        == 1
    )
    with tenant_context(acme.id):
        assert db_session.scalar(select(func.count()).select_from(SsoIdentity)) == 1


@pytest.mark.parametrize(
    ("login_name", "refusal"),
    [
        ("stranger@elsewhere.example", "only with an address at a domain it has proven (acme.example)"),
        ("unverified.nora@acme.example", "did not confirm an email address"),
    ],
)
def test_nobody_joins_from_outside_the_proven_domains_or_without_a_confirmed_address(
    app, client, db_session, acme, provider, dns_records, login_name, refusal
):
    """An address at another domain, or one the provider does not vouch for, gets a clear 400 and
    no account."""
    login(client, OWNER)
    configure(client, provider)
    prove_domain(client, dns_records, "acme.example")
    visitor = app.test_client()
    refused = sso_sign_in(visitor, provider, login_name)
    assert refused.status_code == 400 and refusal in refused.get_data(as_text=True)
    assert not _signed_in(visitor)
    assert db_session.scalar(select(func.count()).select_from(User).where(User.email.like("%nora%"))) == 0
    assert db_session.scalar(select(func.count()).select_from(User).where(User.email.like("stranger%"))) == 0


def test_nobody_joins_by_signing_in_while_the_plan_has_no_seat(
    app, client, db_session, acme, provider, dns_records, monkeypatch
):
    """Acme on a Free plan of two seats, both taken: a newcomer at its proven domain gets a 400
    saying so, and neither an account nor a membership is made."""
    monkeypatch.setitem(catalog.PLANS, "free", dataclasses.replace(catalog.FREE, members=2))
    login(client, OWNER)
    configure(client, provider)
    prove_domain(client, dns_records, "acme.example")
    db_session.execute(update(Organization).where(Organization.id == acme.id).values(plan="free"))
    db_session.commit()
    refused = sso_sign_in(app.test_client(), provider, "nora@acme.example")
    assert refused.status_code == 400
    assert "Acme cannot take new members now. Your plan (Free) includes 2 members." in refused.text
    assert db_session.scalar(select(func.count()).select_from(User).where(User.email.like("nora%"))) == 0


def test_an_existing_account_is_linked_only_after_it_confirms_by_email(
    app, client, db_session, acme, provider
):
    """Grace's address at the provider does not sign her in: a link is mailed to her address, and
    only opening it joins her account to the provider's subject; then she signs in directly."""
    login(client, OWNER)
    configure(client, provider)
    grace = app.test_client()
    answer = sso_sign_in(grace, provider, "grace@acme.example")
    assert answer.status_code == 200 and "Check your email" in answer.get_data(as_text=True)
    assert not _signed_in(grace)
    with tenant_context(acme.id):
        assert db_session.scalar(select(func.count()).select_from(SsoIdentity)) == 0

    link = sent_mails(None, to="grace@acme.example")[-1].link(r"https?://\S+/sso/link/\S+")
    opened = grace.get(urlsplit(link).path)
    assert opened.status_code == 200 and "Link and continue" in opened.get_data(as_text=True)
    linked = post_form(grace, urlsplit(link).path)
    assert linked.status_code == 303 and linked.headers["Location"] == "/acme/"
    assert grace.get("/acme/").status_code == 200
    assert post_form(grace, urlsplit(link).path).status_code == 409  # already linked

    later = app.test_client()
    assert sso_sign_in(later, provider, "grace@acme.example").status_code == 303
    assert _signed_in(later)
    assert {"sso.link_requested", "sso.linked", "sso.signed_in"} <= set(_actions(acme.id))


def test_enforced_sso_keeps_out_a_password_only_member_for_a_day_at_a_time(
    app, client, db_session, acme, provider, monkeypatch
):
    """With single sign-on enforced, Grace's password opens her account but not Acme, whose pages
    send her to the provider; after it she is in, for a day; an owner may break the glass, audited,
    and a member may not."""
    login(client, OWNER)
    configure(client, provider)
    refused = post_form(client, SETTINGS, f"{SETTINGS}/enforce", **{"enforce-enforced": "y"})
    assert refused.status_code == 422 and "Sign in through the provider yourself first" in refused.get_data(
        as_text=True
    )
    assert link_by_mail(client, provider, OWNER).status_code == 303
    assert post_form(client, SETTINGS, f"{SETTINGS}/enforce", **{"enforce-enforced": "y"}).status_code == 303
    assert "Enforced since" in client.get(SETTINGS).get_data(as_text=True)

    grace = app.test_client()
    login(grace, "grace@acme.example")
    blocked = grace.get("/acme/issues")
    assert blocked.status_code == 403
    page = blocked.get_data(as_text=True)
    assert "Single sign-on required" in page and "/sso/acme/start?next=" in page and "break-glass" not in page
    assert grace.get("/account").status_code == 200
    assert grace.get("/sso/acme/break-glass").status_code == 404
    assert link_by_mail(grace, provider, "grace@acme.example").status_code == 303
    assert grace.get("/acme/issues").status_code == 200

    later = sso_session.now() + 25 * 3600
    monkeypatch.setattr(sso_session, "now", lambda: later)
    assert grace.get("/acme/issues").status_code == 403
    assert sso_sign_in(grace, provider, "grace@acme.example").status_code == 303
    assert grace.get("/acme/issues").status_code == 200

    owner = app.test_client()
    login(owner, OWNER)
    assert "break-glass" in owner.get("/acme/").get_data(as_text=True)
    entered = post_form(owner, "/sso/acme/break-glass", password=PASSWORD, reason="provider outage")
    assert entered.status_code == 303
    assert owner.get("/acme/").status_code == 200
    with tenant_context(acme.id):
        glass = db_session.scalar(select(AuditEvent).where(AuditEvent.action == "sso.break_glass"))
    assert glass is not None and glass.data["reason"] == "provider outage" and glass.actor_email == OWNER


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("wrong_audience", "azp"),  # an audience without the client: its authorized party must be the client
        ("expired", "expired"),
        ("bad_signature", "signature"),
        ("wrong_nonce", "nonce"),
        ("wrong_issuer", "iss"),
    ],
)
def test_id_tokens_a_hostile_provider_could_send_are_refused(
    app, client, db_session, acme, provider, dns_records, mode, reason
):
    """A token for another audience, expired, badly signed, with another nonce or issuer: refused
    with the reason (400, never a 500), audited, nobody signed in and no account made."""
    login(client, OWNER)
    configure(client, provider)
    prove_domain(client, dns_records, "acme.example")
    visitor = app.test_client()
    callback = provider_answer(visitor, provider, "nora@acme.example")
    provider.op.tamper_next_id_token(mode)
    refused = visitor.get(callback)
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "was refused" in text and reason in text.lower()
    assert not _signed_in(visitor)
    assert (
        db_session.scalar(select(func.count()).select_from(User).where(User.email == "nora@acme.example"))
        == 0
    )
    assert "sso.sign_in_failed" in _actions(acme.id)


def test_a_replayed_or_carried_over_callback_is_refused(app, client, db_session, acme, provider, dns_records):
    """The provider's answer works once, in the session that started the sign-in: replayed after
    use, or brought to another browser (login CSRF), it is refused and signs nobody in."""
    login(client, OWNER)
    configure(client, provider)
    prove_domain(client, dns_records, "acme.example")

    other = app.test_client()
    stolen = provider_answer(app.test_client(), provider, "nora@acme.example")
    carried = other.get(stolen)
    assert carried.status_code == 400 and not _signed_in(other)

    visitor = app.test_client()
    callback = provider_answer(visitor, provider, "nora@acme.example")
    assert visitor.get(callback).status_code == 303
    post_form(visitor, "/account", "/logout")
    replayed = visitor.get(callback)
    assert replayed.status_code == 400 and "Start again" in replayed.get_data(as_text=True)
    assert not _signed_in(visitor)


def test_a_wrong_secret_or_an_unreachable_provider_gets_a_clear_answer(
    app, client, db_session, acme, provider, dns_records
):
    """A client secret the provider refuses is answered with its reason (400); a provider that does
    not answer, with a 502 that says so: never a 500."""
    login(client, OWNER)
    configure(client, provider)
    prove_domain(client, dns_records, "acme.example")
    post_form(
        client,
        SETTINGS,
        f"{SETTINGS}/connection",
        **{
            "connection-issuer": provider.op.issuer,
            "connection-client_id": provider.client.client_id,
            "connection-client_secret": "not-the-secret",
        },
    )
    refused = sso_sign_in(app.test_client(), provider, "nora@acme.example")
    assert refused.status_code == 400 and "was refused" in refused.get_data(as_text=True)

    with app.app_context(), tenant_context(acme.id):
        connection = db.session.scalar(select(SsoConnection))
        connection.issuer = f"http://127.0.0.1:{free_port()}"
        connection.version += 1
        db.session.commit()
    down = app.test_client().get("/sso/acme/start")
    assert down.status_code == 502 and "could not be used" in down.get_data(as_text=True)


def test_removing_sso_asks_first_and_keeps_people_linked(app, client, db_session, acme, provider):
    """Removing the connection asks first, ends single sign-on and its enforcement, and keeps the
    linked people: the same provider set up again signs them in as before."""
    login(client, OWNER)
    configure(client, provider)
    assert link_by_mail(client, provider, OWNER).status_code == 303
    post_form(client, SETTINGS, f"{SETTINGS}/enforce", **{"enforce-enforced": "y"})
    with app.app_context(), tenant_context(acme.id):
        first = clients.client_name(db.session.scalar(select(SsoConnection)))
    question = client.get(f"{SETTINGS}/remove").get_data(as_text=True)
    assert "Remove single sign-on?" in question
    assert post_form(client, f"{SETTINGS}/remove").status_code == 303
    assert client.get("/sso/acme/start").status_code == 404
    assert "Not set up" in client.get(SETTINGS).get_data(as_text=True)
    assert client.get("/acme/").status_code == 200  # no longer enforced
    assert {"sso.removed", "sso.enforcement_ended", "sso.disabled"} <= set(_actions(acme.id))

    configure(client, provider)
    with app.app_context(), tenant_context(acme.id):
        assert clients.client_name(db.session.scalar(select(SsoConnection))) != first  # no stale client
    again = app.test_client()
    assert sso_sign_in(again, provider, OWNER).status_code == 303  # linked before: straight in
