"""Flask-Login wiring: identities carry the session epoch, so a password change ends sessions."""

from __future__ import annotations

import hmac
import uuid

from flask import Flask, flash, redirect, request, url_for
from flask_login import current_user

from app.extensions import db, login_manager
from app.models import User


def _read_with_session(identity: str):
    """What a request of the login ``identity`` names reads, read with its session (one round
    trip): the person's cached account, the feature flags' version and, on a path that showed a
    cached page, that page."""
    from app.auth.identity import _TOPIC, user_id_from
    from app.core import cache, page_cache
    from app.flags.state import TOPIC as FLAGS

    try:
        user_id = user_id_from(identity.partition(":")[0])
    except (AttributeError, ValueError):
        return None
    groups = [cache.memoized_for_user_keys(user_id, _TOPIC, "account"), [cache.global_topic_key(FLAGS)]]
    page = page_cache.page_keys_for(request._get_current_object(), user_id)
    if page:
        groups.append(page)
    return cache.read_along(*groups)


def register_login(app: Flask) -> None:
    from app.core.sessions import read_along_with_login

    read_along_with_login(_read_with_session)
    # Flask-Login's own context processor loads the person's row (a query) for every template
    # rendered; the layout reads the cached account instead (``signed_in_account``), and the
    # few templates that show the person's details load it when they do.
    login_manager.init_app(app, add_context_processor=False)

    @app.context_processor
    def _current_user_when_used():
        return {"current_user": current_user}

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
