"""Two-factor authentication: enrolment, the sign-in's second step, recovery codes, turning it off."""

from __future__ import annotations

from types import SimpleNamespace

import pyotp
import pytest
from sqlalchemy import Text, select, type_coerce

from app.core.tenancy import tenant_context
from app.models import AuditEvent, RecoveryCode, TwoFactor
from tests.accounts import PASSWORD, RECOVERY_CODE_SHOWN, TWO_FACTOR_SECRET_SHOWN, login, post_form
from tests.accounts import enrol_two_factor as enrol
from tests.factories import OWNER, make_acme, make_beta

SECRET_SHOWN, RECOVERY_CODE = TWO_FACTOR_SECRET_SHOWN, RECOVERY_CODE_SHOWN


@pytest.fixture
def acme(db_session):
    """Acme (owner Olive, member Grace); Olive is a member of Beta too."""
    acme = make_acme({"grace@example.com": "member"})
    beta = make_beta()
    from tests.accounts import add_member

    add_member(beta.org, acme.owner, "member")
    db_session.commit()
    return SimpleNamespace(id=acme.id, owner_id=acme.owner.id, beta_id=beta.id)


def second_step(client, code: str):
    return post_form(client, "/login/two-factor", code=code)


def _enabled(db_session, user_id) -> bool:
    return db_session.scalar(select(TwoFactor.confirmed_at).where(TwoFactor.user_id == user_id)) is not None


def test_enrol_refuses_a_wrong_code_then_turns_on_with_a_current_one(
    app, client, db_session, acme, two_factor_clock
):
    """The set-up shows the secret as a QR code and as text; a wrong code is a form error, a
    current one turns two-factor on, stores the secret encrypted and ten hashed recovery codes."""
    login(client, OWNER)
    post_form(client, "/account", "/account/two-factor/start")
    page = client.get("/account/two-factor/setup").get_data(as_text=True)
    secret = SECRET_SHOWN.search(page).group(1)
    wrong = post_form(
        client,
        "/account/two-factor/setup",
        code="000000" if pyotp.TOTP(secret).at(two_factor_clock.now) != "000000" else "111111",
    )
    assert wrong.status_code == 422
    assert "That code is not right" in wrong.get_data(as_text=True)
    assert not _enabled(db_session, acme.owner_id)

    done = post_form(client, "/account/two-factor/setup", code=pyotp.TOTP(secret).at(two_factor_clock.now))
    assert done.status_code == 200
    codes = RECOVERY_CODE.findall(done.get_data(as_text=True))
    assert len(set(codes)) == 10
    db_session.expire_all()
    with app.app_context():  # the secret is decrypted with the app's keys
        row = db_session.get(TwoFactor, acme.owner_id)
        assert row.enabled and row.secret == secret
    stored = db_session.execute(select(type_coerce(TwoFactor.secret, Text))).scalar_one()
    assert secret not in stored  # a Fernet token, not the secret
    hashes = db_session.scalars(
        select(RecoveryCode.code_hash).where(RecoveryCode.user_id == acme.owner_id)
    ).all()
    assert len(hashes) == 10 and not set(hashes) & {code.replace("-", "") for code in codes}
    assert "On since" in client.get("/account").get_data(as_text=True)


def test_sign_in_asks_for_a_code_after_the_password(client, db_session, acme, two_factor_clock):
    """With two-factor on, a correct password leads to the second step, not into the account; a
    current code signs in; the same code again (replay) is refused."""
    login(client, OWNER)
    app, _ = enrol(client, two_factor_clock)
    client.post("/logout", data={"csrf_token": _token(client)})

    password_only = login(client, OWNER)
    assert password_only.status_code == 303 and password_only.headers["Location"] == "/login/two-factor"
    assert client.get("/acme/").status_code == 302  # not signed in yet: to the login page
    two_factor_clock.step()
    code = app.at(two_factor_clock.now)
    assert second_step(client, "123456" if code != "123456" else "654321").status_code == 422
    signed_in = second_step(client, code)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/acme/"
    assert client.get("/acme/").status_code == 200

    client.post("/logout", data={"csrf_token": _token(client)})
    login(client, OWNER)
    replay = second_step(client, code)  # same step: already used
    assert replay.status_code == 422
    assert "already used" in replay.get_data(as_text=True)
    two_factor_clock.step()
    assert second_step(client, app.at(two_factor_clock.now)).status_code == 303


def test_a_recovery_code_signs_in_once(client, db_session, acme, two_factor_clock):
    """A recovery code replaces the app's code once; used again it is refused."""
    login(client, OWNER)
    _, codes = enrol(client, two_factor_clock)
    client.post("/logout", data={"csrf_token": _token(client)})
    login(client, OWNER)
    assert second_step(client, codes[3].upper()).status_code == 303
    client.post("/logout", data={"csrf_token": _token(client)})
    login(client, OWNER)
    again = second_step(client, codes[3])
    assert again.status_code == 422
    db_session.expire_all()
    assert len(db_session.scalars(select(RecoveryCode.id)).all()) == 9


def test_the_second_step_expires(client, db_session, acme, two_factor_clock):
    """A password given over five minutes ago no longer leads to a login."""
    login(client, OWNER)
    enrol(client, two_factor_clock)
    client.post("/logout", data={"csrf_token": _token(client)})
    login(client, OWNER)
    two_factor_clock.step(11)
    late = client.get("/login/two-factor")
    assert late.status_code == 303 and late.headers["Location"] == "/login"


def test_wrong_codes_are_rate_limited(app, client, db_session, acme, two_factor_clock, monkeypatch):
    """Wrong codes at the second step count against the person; past the limit: 429."""
    monkeypatch.setitem(app.config, "TWO_FACTOR_LIMIT_PER_ACCOUNT", "2 per 10 minutes")
    login(client, OWNER)
    enrol(client, two_factor_clock)
    client.post("/logout", data={"csrf_token": _token(client)})
    login(client, OWNER)
    assert second_step(client, "000000").status_code == 422
    assert second_step(client, "000001").status_code == 422
    assert second_step(client, "000002").status_code == 429


def test_disable_needs_the_password_and_a_code(client, db_session, acme, two_factor_clock):
    """Turning two-factor off refuses a wrong password and a wrong code, then works with both."""
    login(client, OWNER)
    app, _ = enrol(client, two_factor_clock)
    two_factor_clock.step()
    page = "/account/two-factor"
    wrong_password = post_form(
        client,
        page,
        "/account/two-factor/disable",
        **{"disable-password": "nope", "disable-code": app.at(two_factor_clock.now)},
    )
    assert wrong_password.status_code == 422 and "password is not correct" in wrong_password.get_data(
        as_text=True
    )
    wrong_code = post_form(
        client, page, "/account/two-factor/disable", **{"disable-password": PASSWORD, "disable-code": "12345"}
    )
    assert wrong_code.status_code == 422 and "code is not right" in wrong_code.get_data(as_text=True)
    assert _enabled(db_session, acme.owner_id)
    off = post_form(
        client,
        page,
        "/account/two-factor/disable",
        **{"disable-password": PASSWORD, "disable-code": app.at(two_factor_clock.now)},
    )
    assert off.status_code == 303
    db_session.expire_all()
    assert not db_session.scalars(select(TwoFactor.user_id)).all()
    assert not db_session.scalars(select(RecoveryCode)).all()
    client.post("/logout", data={"csrf_token": _token(client)})
    assert login(client, OWNER).headers["Location"] == "/acme/"


def test_new_recovery_codes_need_the_password_and_replace_the_old(client, db_session, acme, two_factor_clock):
    """A new set of recovery codes is shown once after the password; the old codes stop working."""
    login(client, OWNER)
    _, old = enrol(client, two_factor_clock)
    refused = post_form(
        client, "/account/two-factor", "/account/two-factor/recovery-codes", **{"recovery-password": "nope"}
    )
    assert refused.status_code == 422
    made = post_form(
        client, "/account/two-factor", "/account/two-factor/recovery-codes", **{"recovery-password": PASSWORD}
    )
    new = RECOVERY_CODE.findall(made.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    client.post("/logout", data={"csrf_token": _token(client)})
    login(client, OWNER)
    assert second_step(client, old[0]).status_code == 422
    assert second_step(client, new[0]).status_code == 303


def test_changes_are_in_each_organizations_audit_log(client, db_session, acme, two_factor_clock):
    """Enabling, new recovery codes and disabling are recorded in every organization of the person."""
    login(client, OWNER)
    app, _ = enrol(client, two_factor_clock)
    post_form(
        client, "/account/two-factor", "/account/two-factor/recovery-codes", **{"recovery-password": PASSWORD}
    )
    two_factor_clock.step()
    post_form(
        client,
        "/account/two-factor",
        "/account/two-factor/disable",
        **{"disable-password": PASSWORD, "disable-code": app.at(two_factor_clock.now)},
    )
    db_session.expire_all()
    for org_id in (acme.id, acme.beta_id):
        with tenant_context(org_id):
            actions = db_session.scalars(
                select(AuditEvent.action).order_by(AuditEvent.created_at, AuditEvent.id)
            ).all()
        mine = [action for action in actions if action.startswith("two_factor.")]
        assert mine == ["two_factor.enabled", "two_factor.recovery_codes_regenerated", "two_factor.disabled"]


def _token(client) -> str:
    from tests.conftest import csrf_token_from

    return csrf_token_from(client.get("/account").get_data(as_text=True))
