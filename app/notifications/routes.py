"""The inbox: a member's notifications in this organization, marked read one by one or all."""

from __future__ import annotations

from flask import abort, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select, update

from app.core.permissions import require
from app.extensions import db
from app.models import Notification
from app.models.base import utcnow
from app.notifications.services import unread_count
from app.orgs.context import current_access, tenant_blueprint
from app.orgs.forms import ConfirmForm

bp = tenant_blueprint("notifications", __name__)


@bp.app_context_processor
def _inbox_in_layout():
    def unread_notifications() -> int:
        """The member's unread notifications in this organization (for the layout's inbox link)."""
        return unread_count() if current_access() is not None else 0

    return {"unread_notifications": unread_notifications}


@bp.get("/notifications")
@require("work.view")
def inbox():
    items = (
        db.session.scalars(
            select(Notification)
            .where(Notification.user_id == current_user.id)
            .order_by(Notification.read_at.is_not(None), Notification.created_at.desc())
            .limit(100)
        )
        .unique()
        .all()
    )
    return render_template("notifications/inbox.html", items=items, confirm_form=ConfirmForm())


@bp.post("/notifications/read-all")
@require("work.view")
def read_all():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    db.session.execute(
        update(Notification)
        .where(Notification.user_id == current_user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    return redirect(url_for("notifications.inbox"), 303)


@bp.post("/notifications/<uuid:notification_id>/read")
@require("work.view")
def read_one(notification_id):
    item = Notification.get_scoped(db.session, notification_id)
    if item is None or item.user_id != current_user.id:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    ref = item.issue.ref
    item.read_at = item.read_at or utcnow()
    return redirect(url_for("issues.show", issue_ref=ref), 303)
