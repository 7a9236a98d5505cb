"""The inbox: a member's notifications in this organization, a page at a time, marked read one by one or all.

Every change is a POST with its CSRF token: opening a notification marks it read and goes on
to its issue; "mark read" marks one and stays; "mark all read" marks the unread ones up to
the newest the page knew of, so one that arrived after the page was shown stays unread.
"""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import update

from app.core.permissions import require
from app.extensions import db
from app.models import Notification
from app.models.base import utcnow
from app.notifications import inbox as pages
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


def _show(values) -> str:
    show = values.get("show") or pages.UNREAD
    if show not in (pages.UNREAD, pages.ALL):
        abort(400, "Show unread or all notifications.")
    return show


def _cursor(values, name: str) -> pages.Cursor | None:
    text = values.get(name)
    if not text:
        return None
    try:
        return pages.Cursor.parse(text)
    except pages.BadCursor:
        abort(400, "That page of the inbox does not exist. Open the inbox again.")


def _inbox_url(show: str, **cursor) -> str:
    """The inbox at ``show`` (the default left out of the URL) and at a page cursor, if any."""
    args = {name: str(value) for name, value in cursor.items() if value is not None}
    return url_for("notifications.inbox", show=None if show == pages.UNREAD else show, **args)


@bp.get("/notifications")
@require("work.view")
def inbox():
    show = _show(request.args)
    before, after = _cursor(request.args, "before"), _cursor(request.args, "after")
    if before is not None and after is not None:
        abort(400, "A page of the inbox is either before or after a notification, not both.")
    page = pages.inbox_page(current_user.id, show, before=before, after=after)
    unread = unread_count()
    upto = pages.newest_unread(current_user.id) if unread else None
    here = {"show": show, "before": before, "after": after}
    return render_template(
        "notifications/inbox.html",
        page=page,
        show=show,
        here={name: str(value) for name, value in here.items() if value is not None},
        paged=before is not None or after is not None,
        unread=unread,
        upto=upto,
        inbox_url=_inbox_url,
        confirm_form=ConfirmForm(),
    )


def _back_to_inbox():
    """The inbox page a form was posted from (its ``show`` and cursor, sent as hidden fields)."""
    show = _show(request.form)
    before, after = _cursor(request.form, "before"), _cursor(request.form, "after")
    return redirect(_inbox_url(show, before=before, after=None if before else after), 303)


@bp.post("/notifications/read-all")
@require("work.view")
def read_all():
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired. Reload the page and try again.")
    criteria = [Notification.user_id == current_user.id, Notification.read_at.is_(None)]
    upto = _cursor(request.form, "upto")
    if upto is not None:  # only what the page knew of: one that came later stays unread
        criteria.append(upto.up_to())
    db.session.execute(update(Notification).where(*criteria).values(read_at=utcnow()))
    return redirect(_inbox_url(_show(request.form)), 303)


def _own_notification(notification_id) -> Notification:
    """The signed-in person's notification in this organization, or 404 (another's is not there)."""
    item = Notification.get_scoped(db.session, notification_id)
    if item is None or item.user_id != current_user.id:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired. Reload the page and try again.")
    return item


@bp.post("/notifications/<uuid:notification_id>/read")
@require("work.view")
def read_one(notification_id):
    """Open a notification: it is marked read and its issue shown."""
    item = _own_notification(notification_id)
    ref = item.issue.ref
    item.read_at = item.read_at or utcnow()
    return redirect(url_for("issues.show", issue_ref=ref), 303)


@bp.post("/notifications/<uuid:notification_id>/mark-read")
@require("work.view")
def mark_read(notification_id):
    """Mark one notification read and go back to the inbox page it was on."""
    item = _own_notification(notification_id)
    item.read_at = item.read_at or utcnow()
    return _back_to_inbox()
