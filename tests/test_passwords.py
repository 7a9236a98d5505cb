"""New passwords: common and breached ones are refused wherever a password is set."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Invitation, User
from tests.accounts import PASSWORD, login, make_user, post_form, sent_mails

COMMON = ["password", "12345678", "qwertyuiop", "PassWord", "QWERTYUIOP"]
STRONG = "tulip orbit cobbler lantern"
TOO_COMMON = "This password is too common"


def test_the_list_is_large_and_spares_the_fixtures():
    """The shipped list holds at least 100,000 passwords, and the test fixtures' passwords are not on it."""
    from app.auth.passwords import common_password_count, is_common

    assert common_password_count() >= 100_000
    assert all(is_common(password) for password in COMMON)
    assert not any(is_common(p) for p in (PASSWORD, STRONG, "worklane-demo", "another good passphrase"))


@pytest.mark.parametrize("password", COMMON)
def test_signup_refuses_common_passwords(client, db_session, redis_client, password):
    """Sign-up with a common password is a 422 with a clear message; no account, no mail."""
    response = post_form(
        client, "/signup", name="Ada", email="ada@example.com", password=password, organization="Analytical"
    )
    assert response.status_code == 422
    assert TOO_COMMON in response.get_data(as_text=True)
    assert db_session.scalar(select(db.func.count()).select_from(User)) == 0
    assert sent_mails(redis_client) == []


def test_signup_accepts_a_strong_passphrase(client, db_session):
    """A passphrase that is on no list is accepted at sign-up."""
    response = post_form(
        client, "/signup", name="Ada", email="ada@example.com", password=STRONG, organization="Analytical"
    )
    assert response.status_code == 303


def _invitation_link(client, db_session, redis_client, org) -> str:
    login(client, "owner@example.com")
    post_form(client, "/acme/members", "/acme/invitations", email="new@example.com", role="member")
    return sent_mails(redis_client, "new@example.com")[-1].link()


@pytest.mark.parametrize("password", COMMON)
def test_invited_signup_refuses_common_passwords(app, client, db_session, redis_client, org, password):
    """Joining by invitation with a common password is a 422; no account is made, the link still works."""
    link = _invitation_link(client, db_session, redis_client, org)
    guest = app.test_client()
    response = post_form(guest, link + "/signup", name="Nina", password=password)
    assert response.status_code == 422
    assert TOO_COMMON in response.get_data(as_text=True)
    assert db_session.scalar(select(User).where(User.email == "new@example.com")) is None
    with tenant_context(org.id):
        assert db_session.scalars(select(Invitation)).one().accepted_at is None


def test_invited_signup_accepts_a_strong_passphrase(app, client, db_session, redis_client, org):
    """Joining by invitation with a strong passphrase works."""
    link = _invitation_link(client, db_session, redis_client, org)
    response = post_form(app.test_client(), link + "/signup", name="Nina", password=STRONG)
    assert response.status_code == 303


def _reset_link(client, db_session, redis_client) -> str:
    make_user("ada@example.com")
    db_session.commit()
    post_form(client, "/forgot-password", email="ada@example.com")
    return sent_mails(redis_client, "ada@example.com")[-1].link()


@pytest.mark.parametrize("password", COMMON)
def test_reset_refuses_common_passwords(client, db_session, redis_client, password):
    """A password reset to a common password is a 422; the old password still works."""
    link = _reset_link(client, db_session, redis_client)
    response = post_form(client, link, password=password, confirm=password)
    assert response.status_code == 422
    assert TOO_COMMON in response.get_data(as_text=True)
    assert login(client, "ada@example.com", PASSWORD).status_code == 303


def test_reset_accepts_a_strong_passphrase(client, db_session, redis_client):
    """A password reset to a strong passphrase works."""
    link = _reset_link(client, db_session, redis_client)
    assert post_form(client, link, password=STRONG, confirm=STRONG).status_code == 303
    assert login(client, "ada@example.com", STRONG).status_code == 303


def _change_password(client, new: str):
    return post_form(
        client,
        "/account",
        "/account/password",
        **{"password-current_password": PASSWORD, "password-password": new, "password-confirm": new},
    )


@pytest.mark.parametrize("password", COMMON)
def test_change_password_refuses_common_passwords(client, db_session, redis_client, password):
    """Changing to a common password is a 422 with the message; the stored password is unchanged."""
    user = make_user("ada@example.com")
    db_session.commit()
    user_id, before = user.id, user.password_hash
    login(client, "ada@example.com")
    response = _change_password(client, password)
    assert response.status_code == 422
    assert TOO_COMMON in response.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.get(User, user_id).password_hash == before


def test_change_password_accepts_a_strong_passphrase(client, db_session):
    """Changing to a strong passphrase works."""
    make_user("ada@example.com")
    db_session.commit()
    login(client, "ada@example.com")
    assert _change_password(client, STRONG).status_code == 303


def test_services_refuse_common_passwords_too(app, db_session):
    """The account services refuse a common password even without a form in front of them."""
    from app.auth import services as accounts
    from app.auth.passwords import UnacceptablePassword

    user = make_user("ada@example.com")
    with app.test_request_context():
        with pytest.raises(UnacceptablePassword):
            accounts.set_password(user, "password")
        with pytest.raises(UnacceptablePassword):
            accounts.sign_up("Bea", "bea@example.com", "12345678", "Bea's")
