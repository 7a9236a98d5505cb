"""Two-factor authentication: a TOTP authenticator app, single-use recovery codes, and the
sign-in that asks for one of them after the password.

- **Enrolment**: a secret is drawn and kept (encrypted) unconfirmed; the account page shows it
  as a QR code and as text; a current code from the app turns two-factor on and makes the ten
  recovery codes, shown once.
- **Codes**: a TOTP code is accepted for its 30-second step and the one either side (clock
  drift), and only for a step after the last accepted one (``TwoFactor.last_used_step``, read
  under a row lock), so a code seen over someone's shoulder cannot be used again.
- **Recovery codes** are 80 random bits each (16 base32 characters), stored as an HMAC-SHA256
  keyed with the person's id. A slow password hash (argon2) protects guessable secrets; these
  cannot be guessed, so a fast hash loses nothing, while a sign-in with a recovery code would
  otherwise run ten argon2 checks (about a second of CPU, a lever for anyone who knows a
  password). The key makes one person's hash useless for another's code. A used code is deleted.
- **Sign-in**: after a correct password the person is not logged in; who they are, the login's
  epoch and when they gave the password are held in the visitor's signed session cookie for
  ``SIGN_IN_SECONDS``, and the second page finishes the login.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from datetime import datetime

import pyotp
import segno
from flask import session
from markupsafe import Markup
from sqlalchemy import delete, select

from app.auth.identity import record_in_organizations
from app.core.security import verify_password
from app.extensions import db
from app.models import RecoveryCode, TwoFactor, User
from app.models.base import utcnow

ISSUER = "Worklane"
RECOVERY_CODE_COUNT = 10
#: How long the second step of a sign-in may wait after the password.
SIGN_IN_SECONDS = 5 * 60
PENDING_KEY = "_two_factor"
_STEP = 30


class TwoFactorError(ValueError):
    """A refusal shown to the person as it is."""


WRONG_CODE = "That code is not right (or was already used). Enter the current code from your app."
WRONG_PASSWORD = "Your password is not correct."


def now() -> float:
    """The time codes are checked at (one place, so tests may move the clock)."""
    return time.time()


def of(user_id: uuid.UUID) -> TwoFactor | None:
    return db.session.get(TwoFactor, user_id)


def enabled_since(user_id: uuid.UUID) -> datetime | None:
    """When the person turned two-factor on (None: it is off), without reading the secret."""
    return db.session.scalar(select(TwoFactor.confirmed_at).where(TwoFactor.user_id == user_id))


def is_enabled(user_id: uuid.UUID) -> bool:
    return enabled_since(user_id) is not None


# --- enrolment --------------------------------------------------------------------------------


def start_enrolment(user: User) -> TwoFactor:
    """The person's unconfirmed secret, drawn now unless one is waiting (the page can be reloaded)."""
    two_factor = of(user.id)
    if two_factor is not None and two_factor.enabled:
        raise TwoFactorError("Two-factor authentication is already on.")
    if two_factor is None:
        two_factor = TwoFactor(user_id=user.id, secret=pyotp.random_base32())
        db.session.add(two_factor)
    return two_factor


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_code(uri: str) -> Markup:
    """The ``otpauth:`` address as an inline SVG QR code (dark modules on a light quiet zone)."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff", omitsize=True)
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code of the secret" ', 1))


def confirm_enrolment(user: User, code: str) -> list[str]:
    """Turn two-factor on with a current ``code``; returns the new recovery codes (shown once)."""
    two_factor = _locked(user.id)
    if two_factor is None or two_factor.enabled:
        raise TwoFactorError("Start the set-up again: no secret is waiting for a code.")
    if not _accept_totp(two_factor, code):
        raise TwoFactorError(WRONG_CODE)
    two_factor.confirmed_at = utcnow()
    codes = _new_recovery_codes(user.id)
    record_in_organizations(user, "two_factor.enabled")
    return codes


# --- codes ------------------------------------------------------------------------------------


def _locked(user_id: uuid.UUID) -> TwoFactor | None:
    """The person's row, locked until commit (two requests never accept the same step)."""
    return db.session.scalar(
        select(TwoFactor)
        .where(TwoFactor.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _normalize(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _accept_totp(two_factor: TwoFactor, code: str) -> bool:
    """Whether ``code`` is the code of the current step or one either side, later than the last
    accepted; the step is then remembered."""
    code = _normalize(code)
    if len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(two_factor.secret)
    current = int(now()) // _STEP
    for step in (current - 1, current, current + 1):
        if two_factor.last_used_step is not None and step <= two_factor.last_used_step:
            continue
        if hmac.compare_digest(totp.at(step * _STEP), code):
            two_factor.last_used_step = step
            return True
    return False


def _recovery_hash(user_id: uuid.UUID, code: str) -> str:
    return hmac.new(user_id.bytes, _normalize(code).encode(), hashlib.sha256).hexdigest()


def _new_recovery_codes(user_id: uuid.UUID) -> list[str]:
    """Replace the person's recovery codes by ``RECOVERY_CODE_COUNT`` new ones (returned as shown)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(alphabet) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    db.session.add_all(
        RecoveryCode(user_id=user_id, code_hash=_recovery_hash(user_id, code)) for code in codes
    )
    return codes


def _use_recovery_code(user_id: uuid.UUID, code: str) -> bool:
    """Spend one recovery code: True if it was one of the person's (it is then gone)."""
    if len(_normalize(code)) != 16:
        return False
    used = db.session.execute(
        delete(RecoveryCode).where(
            RecoveryCode.user_id == user_id, RecoveryCode.code_hash == _recovery_hash(user_id, code)
        )
    )
    return used.rowcount == 1


def recovery_codes_left(user_id: uuid.UUID) -> int:
    return len(db.session.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user_id)).all())


def check_second_factor(user: User, code: str) -> bool:
    """Whether ``code`` (a current TOTP code or an unused recovery code) proves the second factor."""
    two_factor = _locked(user.id)
    if two_factor is None or not two_factor.enabled:
        return False
    return _accept_totp(two_factor, code) or _use_recovery_code(user.id, code)


# --- changes from the account page ------------------------------------------------------------


def regenerate_recovery_codes(user: User, password: str) -> list[str]:
    """A new set of recovery codes (the old ones stop working), after the password."""
    if not verify_password(user.password_hash, password):
        raise TwoFactorError(WRONG_PASSWORD)
    if not is_enabled(user.id):
        raise TwoFactorError("Two-factor authentication is off.")
    codes = _new_recovery_codes(user.id)
    record_in_organizations(user, "two_factor.recovery_codes_regenerated")
    return codes


def disable(user: User, password: str, code: str) -> None:
    """Turn two-factor off: needs the password and a current code or a recovery code."""
    if not verify_password(user.password_hash, password):
        raise TwoFactorError(WRONG_PASSWORD)
    if not check_second_factor(user, code):
        raise TwoFactorError(WRONG_CODE)
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.delete(of(user.id))
    record_in_organizations(user, "two_factor.disabled")


# --- the sign-in's second step ----------------------------------------------------------------


def begin_sign_in(user: User, next_url: str | None) -> None:
    """The password was right: hold the sign-in until the second factor (nobody is logged in)."""
    session[PENDING_KEY] = {"u": str(user.id), "e": user.session_epoch, "at": int(now()), "next": next_url}


def pending_sign_in() -> tuple[User, str | None] | None:
    """The person whose password was just accepted, and where they were going, or None when
    there is none or it is older than ``SIGN_IN_SECONDS``."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or now() - pending.get("at", 0) > SIGN_IN_SECONDS:
        return None
    try:
        user = db.session.get(User, uuid.UUID(pending.get("u", "")))
    except ValueError:
        return None
    if user is None or not hmac.compare_digest(user.session_epoch, pending.get("e", "")):
        return None
    return user, pending.get("next")


def pending_user_key() -> str:
    """Rate-limit key of the second step: the person the pending sign-in names."""
    pending = session.get(PENDING_KEY)
    return "two-factor:" + (str(pending.get("u")) if isinstance(pending, dict) else "none")


def forget_sign_in() -> None:
    session.pop(PENDING_KEY, None)
