"""Secrets at rest: encrypted with ENCRYPTION_KEYS, readable under any of them, rotated by a command."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Text, select, type_coerce

from app.core import encryption
from app.models import TwoFactor
from tests.accounts import make_user


def _stored(db_session, user_id) -> str:
    """The value as the database holds it."""
    return db_session.scalar(select(type_coerce(TwoFactor.secret, Text)).where(TwoFactor.user_id == user_id))


def _read(db_session, user_id) -> str:
    db_session.expire_all()
    return db_session.get(TwoFactor, user_id).secret


@pytest.fixture
def keys(app, monkeypatch):
    """Set ENCRYPTION_KEYS (newest first) for the rest of the test."""

    def use(*keys: str) -> None:
        monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", tuple(keys))

    return use


def test_a_secret_is_stored_encrypted_and_read_back(app, db_session):
    """An EncryptedText column holds a Fernet token, never the plaintext, and reads back the plaintext."""
    with app.app_context():
        user = make_user()
        db_session.add(TwoFactor(user_id=user.id, secret="JBSWY3DPEHPK3PXP"))
        db_session.commit()
        stored = _stored(db_session, user.id)
        assert "JBSWY3DPEHPK3PXP" not in stored
        assert encryption.decrypt(stored) == "JBSWY3DPEHPK3PXP"
        assert _read(db_session, user.id) == "JBSWY3DPEHPK3PXP"


def test_rotation_re_encrypts_under_the_newest_key(app, db_session, keys):
    """With a new key put first, `flask secrets rotate` re-encrypts every value under it: after
    the old key is removed the values still read, and the old key alone reads none."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(old)
    with app.app_context():
        users = [make_user().id for _ in range(2)]
        for number, user_id in enumerate(users):
            db_session.add(TwoFactor(user_id=user_id, secret=f"SECRET{number}"))
        db_session.commit()
        before = [_stored(db_session, user_id) for user_id in users]

    keys(new, old)
    result = app.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "two_factor.secret: 2 re-encrypted" in result.output

    keys(new)
    with app.app_context():
        assert [_read(db_session, user_id) for user_id in users] == ["SECRET0", "SECRET1"]
        after = [_stored(db_session, user_id) for user_id in users]
    assert not set(before) & set(after)
    with pytest.raises(InvalidToken):
        Fernet(old.encode()).decrypt(after[0].encode())


def test_a_value_under_a_removed_key_is_refused(app, db_session, keys):
    """Without the key a value was encrypted with, reading it fails loudly (no silent garbage)."""
    keys(Fernet.generate_key().decode())
    with app.app_context():
        user_id = make_user().id
        db_session.add(TwoFactor(user_id=user_id, secret="SECRET"))
        db_session.commit()
    keys(Fernet.generate_key().decode())
    with app.app_context(), pytest.raises(InvalidToken):
        _read(db_session, user_id)


def test_rotation_reaches_each_organizations_single_sign_on_secret(app, db_session, keys):
    """The client secrets of single sign-on, in a tenant table, are re-encrypted too, organization
    by organization: after rotation each reads under the new key alone."""
    from app.core.tenancy import tenant_context
    from app.models import SsoConnection
    from tests.factories import make_acme, make_beta

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(old)
    with app.app_context():
        teams = {"acme": make_acme().id, "beta": make_beta().id}
        for slug, org_id in teams.items():
            with tenant_context(org_id):
                db_session.add(
                    SsoConnection(issuer=f"https://{slug}.example", client_id="c", client_secret=slug)
                )
                db_session.flush()
        db_session.commit()
    keys(new, old)
    result = app.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "sso_connections.client_secret: 2 re-encrypted" in result.output
    keys(new)
    with app.app_context():
        db_session.expire_all()
        for slug, org_id in teams.items():
            with tenant_context(org_id):
                assert db_session.scalar(select(SsoConnection.client_secret)) == slug
