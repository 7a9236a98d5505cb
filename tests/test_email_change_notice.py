"""Changing the account's email address tells the old address, when asked and when done."""

from __future__ import annotations

from sqlalchemy import select

from app.models import User
from tests.accounts import PASSWORD, login, make_user, post_form, sent_mails


def _ask_for_change(client, new_email="ada@new.example", password=PASSWORD):
    return post_form(
        client, "/account", "/account/email", **{"email-email": new_email, "email-password": password}
    )


def test_requesting_a_change_warns_the_old_address(app, client, db_session, redis_client):
    """The old address learns at once which address was asked for, and how to stop it."""
    make_user("ada@example.com")
    db_session.commit()
    login(client, "ada@example.com")
    assert _ask_for_change(client).status_code == 303
    [notice] = sent_mails(redis_client, "ada@example.com")
    assert "ada@new.example" in notice.subject + notice.text and "ada@new.example" in notice.html
    assert "If you did not" in notice.text
    assert notice.link().startswith("/forgot-password")
    assert notice.link() in notice.html
    [confirmation] = sent_mails(redis_client, "ada@new.example")
    assert "/account/email/confirm/" in confirmation.link()


def test_a_refused_request_sends_nothing(client, db_session, redis_client):
    """A wrong password changes nothing and mails nobody."""
    make_user("ada@example.com")
    db_session.commit()
    login(client, "ada@example.com")
    assert _ask_for_change(client, password="wrong password").status_code == 422
    assert sent_mails(redis_client) == []


def test_confirming_the_change_tells_the_old_address(client, db_session, redis_client):
    """Once the new address is confirmed, the old one is told it no longer signs in."""
    user_id = make_user("ada@example.com").id
    db_session.commit()
    login(client, "ada@example.com")
    _ask_for_change(client)
    [confirmation] = sent_mails(redis_client, "ada@new.example")
    assert client.get(confirmation.link()).status_code == 302
    db_session.expire_all()
    assert db_session.get(User, user_id).email == "ada@new.example"
    old_mails = sent_mails(redis_client, "ada@example.com")
    assert len(old_mails) == 2
    done = old_mails[-1]
    assert "changed" in done.subject.lower()
    assert "ada@new.example" in done.text and "ada@new.example" in done.html
    assert "If you did not" in done.text


def test_resetting_the_password_cancels_a_pending_change(app, client, db_session, redis_client):
    """Following the old address's advice (a password reset) makes the pending confirmation link useless."""
    user_id = make_user("ada@example.com").id
    db_session.commit()
    login(client, "ada@example.com")
    _ask_for_change(client)
    [confirmation] = sent_mails(redis_client, "ada@new.example")
    owner = app.test_client()
    post_form(owner, "/forgot-password", email="ada@example.com")
    reset = [m for m in sent_mails(redis_client, "ada@example.com") if "/reset-password/" in m.text][-1]
    new_password = "a brand new passphrase"
    assert post_form(owner, reset.link(), password=new_password, confirm=new_password).status_code == 303
    assert app.test_client().get(confirmation.link()).status_code == 400
    db_session.expire_all()
    user = db_session.scalars(select(User).where(User.id == user_id)).one()
    assert user.email == "ada@example.com" and user.pending_email is None
