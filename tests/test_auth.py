"""Accounts: sign-up, verification, login, sessions, password reset and changes."""

from __future__ import annotations

import re
import time

from sqlalchemy import select

from app.auth.services import AUTH_TIME_KEY
from app.core.tenancy import unscoped
from app.extensions import db
from app.models import Membership, Organization, User
from tests.accounts import PASSWORD, login, make_user, post_form, sent_mails
from tests.conftest import csrf_token_from, production_app

SESSION_COOKIE = "worklane_session"


def _signup(client, **overrides):
    data = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "password": PASSWORD,
        "organization": "Analytical",
    }
    data.update(overrides)
    return post_form(client, "/signup", **data)


def _session_id(client) -> str | None:
    cookie = client.get_cookie(SESSION_COOKIE)
    return cookie.value if cookie else None


def test_signup_creates_account_org_and_sends_verification(client, db_session, redis_client):
    """Sign-up creates the user, their organization with them as owner, and mails a confirmation link."""
    response = _signup(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/signup/check-email"
    user = db_session.scalars(select(User)).one()
    assert user.email == "ada@example.com" and not user.email_verified
    assert user.password_hash.startswith("$argon2id$")
    org = db_session.scalars(select(Organization)).one()
    assert org.name == "Analytical" and org.slug == "analytical"
    with unscoped("test check"):
        membership = db_session.scalars(select(Membership)).one()
    assert (membership.tenant_id, membership.user_id, membership.role) == (org.id, user.id, "owner")
    [mail] = sent_mails(redis_client, "ada@example.com")
    assert "Confirm your email" in mail.subject
    assert "/verify/" in mail.link()


def test_signup_answers_the_same_for_a_known_address(client, db_session, redis_client):
    """Signing up with a taken address looks identical, creates nothing, and warns the owner by mail."""
    make_user("ada@example.com")
    db_session.commit()
    response = _signup(client, email="ADA@example.com")
    assert response.status_code == 303
    assert response.headers["Location"] == "/signup/check-email"
    assert db_session.scalar(select(db.func.count()).select_from(User)) == 1
    assert db_session.scalar(select(db.func.count()).select_from(Organization)) == 0
    [mail] = sent_mails(redis_client, "ada@example.com")
    assert "already have a Worklane account" in mail.subject


def test_signup_rejects_bad_input_and_keeps_what_was_typed(client, db_session):
    """Bad sign-up input is a 422 with a message per field; typed values stay, the password does not."""
    response = _signup(client, name="", email="not-an-email", password="short", organization="Kept Org")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Enter your name." in html
    assert "Enter an email address like name@example.com." in html
    assert "Use at least 8 characters" in html
    assert 'value="not-an-email"' in html and 'value="Kept Org"' in html
    assert 'value="short"' not in html
    assert db_session.scalar(select(db.func.count()).select_from(User)) == 0


def test_long_passwords_are_allowed(client, db_session):
    """Passwords of 128 and more characters are accepted."""
    long_password = "p" * 200
    assert _signup(client, password=long_password).status_code == 303
    user = db_session.scalars(select(User)).one()
    user.email_verified_at = db.func.now()
    db_session.commit()
    assert login(client, "ada@example.com", long_password).status_code == 303


def test_verification_then_login(client, db_session, redis_client):
    """An unverified account cannot log in; the emailed link confirms it and login works."""
    _signup(client)
    refused = login(client, "ada@example.com")
    assert refused.status_code == 422
    assert "Confirm your email address first" in refused.get_data(as_text=True)
    link = sent_mails(redis_client, "ada@example.com")[-1].link()
    confirmed = client.get(link)
    assert confirmed.status_code == 302
    assert confirmed.headers["Location"] == "/login?email=ada@example.com"
    response = login(client, "ada@example.com")
    assert response.status_code == 303
    assert response.headers["Location"] == "/analytical/"
    assert client.get("/analytical/").status_code == 200


def test_bad_verification_link_is_a_clear_400(client, db_session):
    """A tampered confirmation link gets a page saying so, not a 500."""
    response = client.get("/verify/not-a-real-token")
    assert response.status_code == 400
    assert "This link is not valid" in response.get_data(as_text=True)


def test_wrong_password_and_unknown_address_look_the_same(client, db_session):
    """Login failures say the same thing whether or not the address exists."""
    make_user("ada@example.com")
    db_session.commit()
    wrong = login(client, "ada@example.com", "wrong password")
    unknown = login(client, "nobody@example.com", "wrong password")
    assert wrong.status_code == unknown.status_code == 422
    message = "The email or password is not correct."
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)


def test_session_lives_in_redis_and_rotates_at_login(client, db_session, redis_client):
    """The cookie holds only an id whose data is in Redis; each login issues a new id."""
    make_user("ada@example.com")
    db_session.commit()
    client.get("/login")
    assert _session_id(client) is None  # a visitor stores nothing
    login(client, "ada@example.com")
    before = _session_id(client)
    assert before and redis_client.exists(f"worklane:session:{before}")
    page = client.get("/account")
    client.post("/logout", data={"csrf_token": csrf_token_from(page.get_data(as_text=True))})
    login(client, "ada@example.com")
    after = _session_id(client)
    assert after and after != before
    assert not redis_client.exists(f"worklane:session:{before}")
    ttl = redis_client.ttl(f"worklane:session:{after}")
    assert 0 < ttl <= 12 * 3600


def test_logout_deletes_the_session(client, db_session, redis_client):
    """Logging out removes the session from Redis and protected pages ask to log in again."""
    make_user("ada@example.com")
    db_session.commit()
    login(client, "ada@example.com")
    sid = _session_id(client)
    page = client.get("/account")
    response = client.post("/logout", data={"csrf_token": csrf_token_from(page.get_data(as_text=True))})
    assert response.status_code == 303
    assert not redis_client.exists(f"worklane:session:{sid}")
    assert client.get("/account").status_code == 302


def test_absolute_timeout_ends_the_session(client, db_session):
    """A session older than the absolute limit is logged out on its next request."""
    make_user("ada@example.com")
    db_session.commit()
    login(client, "ada@example.com")
    with client.session_transaction() as sess:
        sess[AUTH_TIME_KEY] = int(time.time()) - 15 * 24 * 3600
    response = client.get("/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_two_app_instances_share_sessions(app, make_app, migrated_env, client, db_session):
    """A session started on one web process is valid on another: the web tier is stateless."""
    make_user("ada@example.com")
    db_session.commit()
    login(client, "ada@example.com")
    other = make_app(migrated_env).test_client()
    other.set_cookie(SESSION_COOKIE, _session_id(client))
    response = other.get("/account")
    assert response.status_code == 200
    assert "ada@example.com" in response.get_data(as_text=True)


def test_password_reset_works_once_and_ends_sessions(app, client, db_session, redis_client):
    """The reset link changes the password once, ends every session, and then stops working."""
    make_user("ada@example.com")
    db_session.commit()
    other_device = app.test_client()
    login(other_device, "ada@example.com")
    assert other_device.get("/account").status_code == 200

    answer_known = post_form(client, "/forgot-password", email="ada@example.com")
    answer_unknown = post_form(client, "/forgot-password", email="nobody@example.com")
    assert answer_known.status_code == answer_unknown.status_code == 200
    strip = lambda r: re.sub(r"<strong>[^<]*</strong>|value=\"[^\"]*\"", "", r.get_data(as_text=True))  # noqa: E731
    assert strip(answer_known) == strip(answer_unknown)
    [mail] = sent_mails(redis_client, "ada@example.com")
    link = mail.link()

    new_password = "a brand new passphrase"
    done = post_form(client, link, password=new_password, confirm=new_password)
    assert done.status_code == 303
    assert other_device.get("/account").status_code == 302  # logged out everywhere
    assert client.get(link).status_code == 400  # single use
    assert login(client, "ada@example.com", PASSWORD).status_code == 422
    assert login(client, "ada@example.com", new_password).status_code == 303


def test_reset_form_errors_keep_the_link(client, db_session, redis_client):
    """Mismatched new passwords are a 422 with a message; the link still works afterwards."""
    make_user("ada@example.com")
    db_session.commit()
    post_form(client, "/forgot-password", email="ada@example.com")
    link = sent_mails(redis_client, "ada@example.com")[-1].link()
    response = post_form(client, link, password="one long password", confirm="another password")
    assert response.status_code == 422
    assert "The two passwords differ." in response.get_data(as_text=True)
    assert client.get(link).status_code == 200


def test_change_password_ends_other_sessions_only(app, client, db_session, redis_client):
    """Changing the password keeps this session and logs out the others."""
    make_user("ada@example.com")
    db_session.commit()
    login(client, "ada@example.com")
    other_device = app.test_client()
    login(other_device, "ada@example.com")
    response = post_form(
        client,
        "/account",
        "/account/password",
        **{
            "password-current_password": PASSWORD,
            "password-password": "new passphrase!",
            "password-confirm": "new passphrase!",
        },
    )
    assert response.status_code == 303
    assert client.get("/account").status_code == 200
    assert other_device.get("/account").status_code == 302
    assert any("password" in m.subject.lower() for m in sent_mails(redis_client, "ada@example.com"))


def test_change_password_needs_the_current_one(client, db_session):
    """A wrong current password is refused with a message and changes nothing."""
    user = make_user("ada@example.com")
    db_session.commit()
    user_id, before = user.id, user.password_hash
    login(client, "ada@example.com")
    response = post_form(
        client,
        "/account",
        "/account/password",
        **{
            "password-current_password": "wrong",
            "password-password": "new passphrase!",
            "password-confirm": "new passphrase!",
        },
    )
    assert response.status_code == 422
    assert "Your current password is not correct." in response.get_data(as_text=True)
    db_session.expire_all()
    assert db_session.get(User, user_id).password_hash == before


def test_change_email_needs_confirmation_from_the_new_address(client, db_session, redis_client):
    """The address changes only when the link sent to the new address is opened."""
    user_id = make_user("ada@example.com").id
    db_session.commit()
    login(client, "ada@example.com")
    response = post_form(
        client, "/account", "/account/email", **{"email-email": "ada@new.example", "email-password": PASSWORD}
    )
    assert response.status_code == 303
    db_session.expire_all()
    assert db_session.get(User, user_id).email == "ada@example.com"
    [mail] = sent_mails(redis_client, "ada@new.example")
    assert client.get(mail.link()).status_code == 302
    db_session.expire_all()
    changed = db_session.get(User, user_id)
    assert changed.email == "ada@new.example" and changed.pending_email is None


def test_login_is_rate_limited_per_account(client, db_session):
    """Repeated failed logins for one account from one address get a friendly 429 page."""
    make_user("ada@example.com")
    db_session.commit()
    statuses = [login(client, "ada@example.com", f"wrong {i}").status_code for i in range(9)]
    assert statuses[:8] == [422] * 8
    assert statuses[8] == 429
    page = login(client, "ada@example.com", PASSWORD)
    assert page.status_code == 429
    assert "Too many requests" in page.get_data(as_text=True)


def test_next_parameter_only_follows_local_paths(client, db_session):
    """After login, ``next`` is followed for local paths and ignored for other sites."""
    make_user("ada@example.com")
    db_session.commit()
    page = client.get("/login?next=https://evil.example/")
    response = client.post(
        "/login?next=https://evil.example/",
        data={
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
            "email": "ada@example.com",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303
    assert "evil.example" not in response.headers["Location"]


def test_security_headers_on_every_page(client, db_session):
    """Pages carry a nonce-based CSP and the other security headers; the nonce changes per response."""
    first = client.get("/login")
    second = client.get("/login")
    csp = first.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert re.search(r"script-src 'self' 'nonce-[\w-]+'", csp)
    assert csp != second.headers["Content-Security-Policy"]
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    assert first.headers["Referrer-Policy"] == "same-origin"
    assert first.headers["X-Frame-Options"] == "DENY"
    assert "style=" not in first.get_data(as_text=True)


def test_forms_without_csrf_token_are_refused(client, db_session):
    """Every form post needs its CSRF token."""
    response = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 400


def test_oversized_requests_get_a_clear_413(client, db_session):
    """A request body over the limit is refused with 413 and a reason, never a 500."""
    response = client.post("/login", data={"email": "a" * (21 * 1024 * 1024), "password": "x"})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True).lower()


def test_session_lookups_happen_in_the_session(client, db_session):
    """The login identity carries the session epoch (a password change invalidates it)."""
    user = make_user("ada@example.com")
    db_session.commit()
    identity = f"{user.id}:{user.session_epoch}"
    login(client, "ada@example.com")
    with client.session_transaction() as sess:
        assert sess["_user_id"] == identity


def test_production_cookies_and_hsts(migrated_env, db_session):
    """In production the session and CSRF cookies are __Host-, Secure, HttpOnly, SameSite=Lax; HSTS is on."""
    app = production_app(migrated_env)
    client = app.test_client()
    response = client.get("/login", base_url="https://worklane.example")
    (csrf_cookie,) = response.headers.getlist("Set-Cookie")
    # A visitor's session (here a flash message across a redirect) travels in the session cookie.
    redirected = client.get("/account", base_url="https://worklane.example")
    (session_cookie,) = redirected.headers.getlist("Set-Cookie")
    assert csrf_cookie.startswith("__Host-worklane_csrf=")
    assert session_cookie.startswith("__Host-worklane_session=")
    for cookie in (csrf_cookie, session_cookie):
        for attribute in ("Secure", "HttpOnly", "Path=/", "SameSite=Lax"):
            assert attribute in cookie
        assert "Domain" not in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=63072000")


def test_password_reset_is_rate_limited_per_ip(client, db_session):
    """Many reset requests from one address get a 429, whatever addresses they name."""
    statuses = [
        post_form(client, "/forgot-password", email=f"n{i}@example.com").status_code for i in range(11)
    ]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429
