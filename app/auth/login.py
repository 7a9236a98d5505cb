"""Flask-Login wiring: identities carry the session epoch, so a password change ends sessions."""

from __future__ import annotations

import hmac
import uuid

from flask import Flask, flash, redirect, request, url_for

from app.extensions import db, login_manager
from app.models import User


def register_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to continue."
    login_manager.login_message_category = "info"

    @app.before_request
    def _enforce_absolute_timeout():
        from app.auth.identity import signed_in
        from app.auth.services import end_session, session_expired

        if request.endpoint == "static" or signed_in() is None:
            return None
        if session_expired():
            end_session()
            flash("Your session has ended. Log in again.", "info")
            return redirect(
                url_for("auth.login", next=request.full_path if request.method == "GET" else None)
            )
        return None


@login_manager.user_loader
def load_user(identity: str) -> User | None:
    user_id, _, epoch = identity.partition(":")
    try:
        user = db.session.get(User, uuid.UUID(user_id))
    except ValueError:
        return None
    if user is None or not hmac.compare_digest(user.session_epoch, epoch):
        return None
    return user
