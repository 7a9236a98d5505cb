"""Accounts: sign-up, verification, login, password reset, password and email changes."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from flask import current_app, session, url_for
from flask_login import login_user, logout_user
from sqlalchemy import select

from app.auth import devices
from app.auth.identity import organizations_of, record_in_organizations
from app.auth.passwords import hash_new_password
from app.core import edits
from app.core.database import commit_now
from app.core.dates import is_time_zone, time_zone_or_default
from app.core.mail import public_url, send_email
from app.core.security import (
    InvalidToken,
    credential_fingerprint,
    hash_password,
    make_token,
    password_needs_rehash,
    read_token,
    verify_password,
)
from app.core.web import duration_text
from app.extensions import db
from app.models import Organization, User
from app.models.base import utcnow
from app.orgs import services as orgs

log = logging.getLogger(__name__)

VERIFY_TOKEN = "verify-email"
RESET_TOKEN = "reset-password"
EMAIL_CHANGE_TOKEN = "change-email"
AUTH_TIME_KEY = "_auth_at"


class AccountError(ValueError):
    """A refusal shown to the user as it is."""


class EmailNotVerified(AccountError):
    def __init__(self, user: User):
        super().__init__("Confirm your email address first. We have sent you a new link.")
        self.user = user


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


# --- sign-up and verification --------------------------------------------------------------


def sign_up(name: str, email: str, password: str, org_name: str, time_zone: str | None = None) -> User | None:
    """Create the account and its first organization, and mail a verification link.

    ``time_zone`` is the browser's guess: kept when it names a zone, else the account is in UTC.

    For an address that already has an account nothing is created: its owner gets a
    mail saying so. The caller answers the same in both cases.
    """
    email = normalize_email(email)
    password_hash = hash_new_password(password)  # refuses a common password before anything else
    existing = find_user(email)
    if existing is not None:
        send_email(
            existing.email,
            "account_exists",
            name=existing.name,
            login_url=public_url("auth.login"),
            reset_url=public_url("auth.forgot_password"),
        )
        return None
    user = User(
        email=email, name=name.strip(), password_hash=password_hash, time_zone=time_zone_or_default(time_zone)
    )
    db.session.add(user)
    db.session.flush()
    orgs.create_organization(user, org_name)
    send_verification(user)
    return user


def send_verification(user: User) -> None:
    """Write a new confirmation link to the outbox (the caller commits)."""
    token = make_token(VERIFY_TOKEN, {"u": str(user.id), "e": user.email})
    send_email(
        user.email,
        "verify_email",
        name=user.name,
        verify_url=public_url("auth.verify_email", token=token),
    )


def verify_email(token: str) -> User:
    payload = read_token(VERIFY_TOKEN, token, current_app.config["EMAIL_VERIFY_MAX_AGE"])
    user = _user_from_payload(payload)
    if user.email != payload.get("e"):
        raise InvalidToken()
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    return user


def _user_from_payload(payload: dict) -> User:
    try:
        user = db.session.get(User, uuid.UUID(payload["u"]))
    except (KeyError, ValueError) as exc:
        raise InvalidToken() from exc
    if user is None:
        raise InvalidToken()
    return user


# --- sessions --------------------------------------------------------------------------------


def authenticate(email: str, password: str) -> User | None:
    """The user for these credentials, or None (as slow for unknown addresses)."""
    user = find_user(email)
    if not verify_password(user.password_hash if user else None, password):
        return None
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def audit_sign_in(user: User, succeeded: bool) -> None:
    """Record a sign-in, or a failed one, in the audit log of each of the person's organizations."""
    record_in_organizations(user, "auth.signed_in" if succeeded else "auth.sign_in_failed")


def audit_failed_sign_in(email: str) -> None:
    """A wrong password for an existing account is recorded in its organizations' logs, and kept
    though the login page answers 422."""
    user = find_user(email)
    if user is None:
        return
    audit_sign_in(user, succeeded=False)
    commit_now("a failed sign-in is audited though the login page answers 422")


def start_session(user: User) -> None:
    """Log in with a fresh session id (no fixation) and stamp the login time."""
    user = user._get_current_object() if hasattr(user, "_get_current_object") else user  # current_user
    current_app.session_interface.regenerate(session)
    session.clear()
    login_user(user)
    session[AUTH_TIME_KEY] = int(time.time())
    devices.remember_device()
    user.last_login_at = utcnow()
    # What follows reads the person's account (where to go next), and that read is cached: it
    # must see the committed login, or the cache holds it under a version the commit moves.
    commit_now("the account read after a login is cached under the version the login moves")


def end_session() -> None:
    """Log out: the stored session is deleted (what follows, like a flash, gets a new id)."""
    logout_user()
    current_app.session_interface.regenerate(session)
    session.clear()


def session_expired() -> bool:
    started = session._get_current_object().get(AUTH_TIME_KEY)  # the proxies resolved: about 1 µs each
    limit = current_app._get_current_object().config["SESSION_ABSOLUTE_HOURS"] * 3600
    return started is None or time.time() - started > limit


# --- passwords -------------------------------------------------------------------------------


def _reset_fingerprint(user: User) -> str:
    return credential_fingerprint(user.password_hash, user.session_epoch)


def request_password_reset(email: str) -> None:
    """Mail a reset link if the address has an account; silent otherwise."""
    user = find_user(email)
    if user is None:
        return
    token = make_token(RESET_TOKEN, {"u": str(user.id), "f": _reset_fingerprint(user)})
    send_email(
        user.email,
        "reset_password",
        name=user.name,
        reset_url=public_url("auth.reset_password", token=token),
        expires_in=duration_text(timedelta(seconds=current_app.config["PASSWORD_RESET_MAX_AGE"])),
    )


def user_for_reset(token: str) -> User:
    """The user a reset link is for; the link dies once the password changes."""
    payload = read_token(RESET_TOKEN, token, current_app.config["PASSWORD_RESET_MAX_AGE"])
    user = _user_from_payload(payload)
    if payload.get("f") != _reset_fingerprint(user):
        raise InvalidToken()
    return user


def set_password(user: User, password: str) -> None:
    """Change the password, end every session of the user and cancel a pending email change (a
    refused password raises UnacceptablePassword and changes nothing)."""
    user.password_hash = hash_new_password(password)
    user.pending_email = None  # its confirmation link stops working (see confirm_email_change)
    user.end_all_sessions()


def reset_password(token: str, password: str) -> User:
    user = user_for_reset(token)
    set_password(user, password)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()  # the link proved the inbox
    send_email(user.email, "password_changed", name=user.name)
    return user


def update_profile(user: User, loaded: dict, submitted: dict) -> list[str]:
    """Apply the profile fields the person changed since ``loaded`` (EditConflict if another
    tab or session changed the same field meanwhile)."""
    user = edits.locked(user)
    to_write = edits.merge({"name": user.name}, loaded, submitted, {"name": "Name"})
    for name, value in to_write.items():
        setattr(user, name, value)
    return sorted(to_write)


def set_time_zone(user: User, time_zone: str) -> None:
    """Show the person's times in ``time_zone`` (an IANA name; ValueError for anything else)."""
    if not is_time_zone(time_zone):
        raise ValueError(f"unknown time zone {time_zone!r}")
    user.time_zone = time_zone


def change_password(user: User, current: str, new: str) -> None:
    if not verify_password(user.password_hash, current):
        raise AccountError("Your current password is not correct.")
    set_password(user, new)
    send_email(user.email, "password_changed", name=user.name)
    start_session(user)  # this session goes on under the new identity; the others end


# --- email change ----------------------------------------------------------------------------


def request_email_change(user: User, new_email: str, password: str) -> None:
    new_email = normalize_email(new_email)
    if not verify_password(user.password_hash, password):
        raise AccountError("Your password is not correct.")
    if new_email == user.email:
        raise AccountError("That is already your address.")
    user.pending_email = new_email
    send_email(
        user.email,
        "email_change_requested",
        name=user.name,
        old_email=user.email,
        new_email=new_email,
        reset_url=public_url("auth.forgot_password"),
    )
    if find_user(new_email) is not None:
        return  # taken: say nothing more here, the confirmation would fail anyway
    token = make_token(EMAIL_CHANGE_TOKEN, {"u": str(user.id), "e": new_email})
    send_email(
        new_email,
        "email_change",
        name=user.name,
        new_email=new_email,
        confirm_url=public_url("auth.confirm_email_change", token=token),
    )


def confirm_email_change(token: str) -> User:
    payload = read_token(EMAIL_CHANGE_TOKEN, token, current_app.config["EMAIL_VERIFY_MAX_AGE"])
    user = _user_from_payload(payload)
    new_email = payload.get("e")
    if not new_email or user.pending_email != new_email:
        raise InvalidToken()
    if find_user(new_email) is not None:
        raise AccountError("Another account already uses that address.")
    old_email = user.email
    user.email = new_email
    user.pending_email = None
    user.email_verified_at = utcnow()
    send_email(old_email, "email_changed", name=user.name, old_email=old_email, new_email=new_email)
    return user


def first_organization(user: User) -> Organization | None:
    summaries = organizations_of(user.id)
    return db.session.get(Organization, summaries[0].org_id) if summaries else None


def home_for(user) -> str:
    """Where a signed-in person starts: their first organization, or creating one."""
    org = first_organization(user)
    return url_for("org.dashboard", org_slug=org.slug) if org else url_for("orgs.new")
