"""Rate limits where abuse is cheap: login, sign-up, current-password checks, invitations."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from app.config import PROJECT_ROOT
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Invitation, User
from tests.accounts import PASSWORD, add_member, login, make_user, post_form, sent_mails
from tests.conftest import free_port

ATTACKER = "203.0.113.66"
OWNER_ELSEWHERE = "198.51.100.7"


def _client_at(app, address: str):
    """A test client whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _assert_friendly_429(response) -> None:
    """A 429 that says when to try again, in the page and in Retry-After."""
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert retry_after > 0
    text = response.get_data(as_text=True)
    assert "Too many" in text
    assert re.search(r"Try again in (about )?\d+ (second|minute|hour)", text), text


def _count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


# --- login -----------------------------------------------------------------------------------


def test_wrong_passwords_block_the_attackers_address_not_the_owner(app, db_session):
    """Failed logins block the guessing address for that account; its owner still logs in from elsewhere."""
    make_user("ada@example.com")
    db_session.commit()
    attacker = _client_at(app, ATTACKER)
    statuses = [login(attacker, "ada@example.com", f"guess {i}").status_code for i in range(8)]
    assert statuses == [422] * 8
    blocked = login(attacker, "ada@example.com", f"guess {8}")
    _assert_friendly_429(blocked)
    assert login(attacker, "ada@example.com", PASSWORD).status_code == 429
    # With no proxy trusted (PROXY_COUNT=0), a forged X-Forwarded-For changes nothing.
    attacker.environ_base["HTTP_X_FORWARDED_FOR"] = "192.0.2.1"
    assert login(attacker, "ada@example.com", "guess x").status_code == 429
    owner = _client_at(app, OWNER_ELSEWHERE)
    assert login(owner, "ada@example.com", PASSWORD).status_code == 303


def test_a_limited_answer_says_what_is_left_and_other_answers_carry_no_limit(app, db_session):
    """A login answer carries the X-RateLimit headers, counting down; a page no limit covers has none."""
    make_user("ada@example.com")
    db_session.commit()
    attacker = _client_at(app, ATTACKER)
    first, second = (login(attacker, "ada@example.com", f"guess {i}") for i in range(2))
    assert int(first.headers["X-RateLimit-Limit"]) > 0
    assert int(second.headers["X-RateLimit-Remaining"]) < int(first.headers["X-RateLimit-Remaining"])
    assert int(second.headers["X-RateLimit-Reset"]) > 0
    unlimited = attacker.get("/healthz")
    assert unlimited.status_code == 200
    assert not [name for name, _value in unlimited.headers.items() if name.startswith("X-RateLimit")]


def test_successful_logins_do_not_count_against_the_limits(app, db_session):
    """Only failed logins count: people signing in many times from one office address are never blocked."""
    make_user("ada@example.com")
    db_session.commit()
    for _ in range(25):  # above the per-address (20) and per-account-from-one-address (8) limits
        assert login(_client_at(app, ATTACKER), "ada@example.com", PASSWORD).status_code == 303
    office = _client_at(app, ATTACKER)
    statuses = [login(office, "ada@example.com", f"guess {i}").status_code for i in range(8)]
    assert statuses == [422] * 8
    _assert_friendly_429(login(office, "ada@example.com", "guess 8"))


def test_behind_a_proxy_the_forwarded_address_is_the_source(migrated_env, make_app, committed_db):
    """With PROXY_COUNT=1 the limit follows X-Forwarded-For: the attacker is blocked, the owner is not."""
    app = make_app({**migrated_env, "PROXY_COUNT": "1"})
    with app.app_context():
        make_user("ada@example.com")
        db.session.commit()
    attacker = app.test_client()
    attacker.environ_base.update(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=ATTACKER)
    assert [login(attacker, "ada@example.com", f"g{i}").status_code for i in range(8)] == [422] * 8
    assert login(attacker, "ada@example.com", PASSWORD).status_code == 429
    owner = app.test_client()
    owner.environ_base.update(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=OWNER_ELSEWHERE)
    assert login(owner, "ada@example.com", PASSWORD).status_code == 303


def test_an_account_has_a_looser_limit_across_addresses(app, db_session, monkeypatch):
    """Guesses spread over many addresses are stopped by the account's own, looser limit."""
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_ACCOUNT", "12 per hour")  # fewer slow logins
    make_user("ada@example.com")
    db_session.commit()
    per_address = int(app.config["LOGIN_LIMIT_PER_ACCOUNT_AND_IP"].split()[0])
    statuses = []
    for attempt in range(12):
        client = _client_at(app, f"203.0.113.{attempt // per_address + 1}")
        statuses.append(login(client, "ada@example.com", f"guess {attempt}").status_code)
    assert statuses == [422] * 12
    _assert_friendly_429(login(_client_at(app, "192.0.2.200"), "ada@example.com", "one more"))


def test_one_address_has_a_limit_across_accounts(app, db_session, monkeypatch):
    """One address trying many accounts is refused after the per-address limit."""
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_IP", "6 per 10 minutes")  # fewer slow logins
    client = _client_at(app, ATTACKER)
    statuses = [login(client, f"n{i}@example.com", "guess").status_code for i in range(6)]
    assert statuses == [422] * 6
    _assert_friendly_429(login(client, "n99@example.com", "guess"))


# --- sign-up ---------------------------------------------------------------------------------


def _signup(client, email: str):
    return post_form(client, "/signup", name="Ada", email=email, password=PASSWORD, organization="Analytical")


def test_signup_is_limited_per_address(app, db_session, redis_client):
    """Sign-ups from one address beyond the limit are refused with 429; nothing is stored or sent."""
    limit = int(app.config["SIGNUP_LIMIT_PER_IP"].split()[0])
    client = _client_at(app, ATTACKER)
    statuses = [_signup(client, f"s{i}@example.com").status_code for i in range(limit)]
    assert statuses == [303] * limit
    users, mails = _count(db_session, User), len(sent_mails(redis_client))
    _assert_friendly_429(_signup(client, "one-more@example.com"))
    assert _count(db_session, User) == users and len(sent_mails(redis_client)) == mails


def test_signup_is_limited_per_email_address(app, db_session, redis_client):
    """Sign-ups naming one address (each mails its owner) are limited, whatever address they come from."""
    make_user("ada@example.com")
    db_session.commit()
    limit = int(app.config["SIGNUP_LIMIT_PER_ACCOUNT"].split()[0])
    for i in range(limit):
        assert _signup(_client_at(app, f"203.0.113.{i + 1}"), "ada@example.com").status_code == 303
    assert len(sent_mails(redis_client, "ada@example.com")) == limit
    _assert_friendly_429(_signup(_client_at(app, "192.0.2.99"), "ada@example.com"))
    assert len(sent_mails(redis_client, "ada@example.com")) == limit


# --- the account page's current-password checks ----------------------------------------------


def _change_password(client, current: str):
    return post_form(
        client,
        "/account",
        "/account/password",
        **{
            "password-current_password": current,
            "password-password": "tulip orbit cobbler lantern",
            "password-confirm": "tulip orbit cobbler lantern",
        },
    )


def _change_email(client, password: str):
    return post_form(
        client, "/account", "/account/email", **{"email-email": "new@example.com", "email-password": password}
    )


def test_current_password_guesses_are_limited(app, client, db_session, redis_client):
    """Wrong current passwords on the password and email forms share one limit; then the right one waits."""
    user = make_user("ada@example.com")
    db_session.commit()
    user_id, before = user.id, user.password_hash
    login(client, "ada@example.com")
    limit = int(app.config["CURRENT_PASSWORD_LIMIT"].split()[0])
    statuses = [
        (_change_password if i % 2 else _change_email)(client, f"guess {i}").status_code for i in range(limit)
    ]
    assert statuses == [422] * limit
    _assert_friendly_429(_change_password(client, PASSWORD))
    assert _change_email(client, PASSWORD).status_code == 429
    db_session.expire_all()
    changed = db_session.get(User, user_id)
    assert changed.password_hash == before and changed.pending_email is None
    assert sent_mails(redis_client, "new@example.com") == []


# --- invitations -----------------------------------------------------------------------------


def _invite(client, email: str):
    return post_form(client, "/acme/members", "/acme/invitations", email=email, role="member")


def test_invitations_are_limited_per_member(app, client, db_session, redis_client, org):
    """Invitations beyond the limit are refused with 429: no invitation stored, no mail sent."""
    login(client, "owner@example.com")
    limit = int(app.config["INVITATION_LIMIT_PER_USER"].split()[0])
    statuses = [_invite(client, f"i{i}@example.com").status_code for i in range(limit)]
    assert statuses == [303] * limit
    _assert_friendly_429(_invite(client, "spam@example.com"))
    with tenant_context(org.id):
        assert _count(db_session, Invitation) == limit
    assert sent_mails(redis_client, "spam@example.com") == []


def test_invitations_are_limited_per_organization(app, client, db_session, redis_client, org, monkeypatch):
    """An organization's members together cannot send more invitations than its limit."""
    monkeypatch.setitem(app.config, "INVITATION_LIMIT_PER_ORGANIZATION", "4 per hour")
    admin = make_user("admin@example.com")
    add_member(org, admin, "admin")
    db_session.commit()
    login(client, "owner@example.com")
    assert [_invite(client, f"o{i}@example.com").status_code for i in range(2)] == [303, 303]
    other = app.test_client()
    login(other, "admin@example.com")
    assert [_invite(other, f"a{i}@example.com").status_code for i in range(2)] == [303, 303]
    _assert_friendly_429(_invite(other, "spam@example.com"))
    assert sent_mails(redis_client, "spam@example.com") == []


def test_resending_one_invitation_is_limited(app, client, db_session, redis_client, org):
    """Resending one invitation again and again is refused with 429; the link and mail stay as they were."""
    login(client, "owner@example.com")
    _invite(client, "friend@example.com")
    with tenant_context(org.id):
        invitation_id = db_session.scalars(select(Invitation)).one().id
    limit = int(app.config["INVITATION_RESEND_LIMIT"].split()[0])
    resend = f"/acme/invitations/{invitation_id}/resend"
    assert [post_form(client, "/acme/members", resend).status_code for _ in range(limit)] == [303] * limit
    with tenant_context(org.id):
        nonce = db_session.scalars(select(Invitation)).one().nonce
    mails = len(sent_mails(redis_client, "friend@example.com"))
    _assert_friendly_429(post_form(client, "/acme/members", resend))
    db_session.expire_all()
    with tenant_context(org.id):
        assert db_session.scalars(select(Invitation)).one().nonce == nonce
    assert len(sent_mails(redis_client, "friend@example.com")) == mails == limit + 1


# --- storage -------------------------------------------------------------------------------


# Other processes, each its own web process: the limiter is one object per process, and an app
# built in this one with another store would leave the session's app counting there.
_OTHER_PROCESS_SCRIPT = """
import json, os, sys
from app import create_app
from app.config import TestingConfig
from tests.accounts import login

store, address, email, *passwords = sys.argv[1:]
config = TestingConfig.from_env(os.environ)
if store:
    config.RATELIMIT_STORAGE_URI = store
client = create_app(config).test_client()
client.environ_base["REMOTE_ADDR"] = address
print(json.dumps([login(client, email, password).status_code for password in passwords]))
"""


def _logins_in_another_process(env, store: str, address: str, email: str, *passwords: str) -> list[int]:
    result = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS_SCRIPT, store, address, email, *passwords],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.processes
def test_limits_are_shared_by_every_web_process(app, migrated_env, committed_db):
    """Guesses counted by one web process block the next guess in another (the count lives in Redis)."""
    with app.app_context():
        make_user("ada@example.com")
        db.session.commit()
    guesses = [f"guess {i}" for i in range(8)]
    assert _logins_in_another_process(migrated_env, "", ATTACKER, "ada@example.com", *guesses) == [422] * 8
    assert login(_client_at(app, ATTACKER), "ada@example.com", PASSWORD).status_code == 429


@pytest.mark.processes
def test_limits_hold_in_memory_while_their_redis_is_down(app, migrated_env, committed_db):
    """With the rate-limit store unreachable, limits still apply (per process) and nothing fails with 500."""
    with app.app_context():
        make_user("ada@example.com")
        db.session.commit()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    guesses = [f"guess {i}" for i in range(9)]
    statuses = _logins_in_another_process(migrated_env, dead, ATTACKER, "ada@example.com", *guesses)
    assert statuses == [422] * 8 + [429]
    owner = _logins_in_another_process(migrated_env, dead, OWNER_ELSEWHERE, "ada@example.com", PASSWORD)
    assert owner == [303]
