"""Saved views: a member's named filters on the issue lists."""

from __future__ import annotations

from flask import url_for
from sqlalchemy import select

from app.core import edits
from app.extensions import db
from app.models import Project, SavedView

#: What a saved view holds, as ``view_values`` gives it.
VIEW_FIELDS = {"filters": "Filters", "project_id": "Project"}


def view_named(user_id, name: str) -> SavedView | None:
    return db.session.scalar(
        select(SavedView)
        .where(SavedView.user_id == user_id, SavedView.name == name)
        .with_for_update(of=SavedView)
        .execution_options(populate_existing=True)
    )


def view_values(view: SavedView) -> dict:
    return {"filters": view.filters, "project_id": str(view.project_id) if view.project_id else None}


def save_view(user_id, name: str, filters: dict, project, confirmed: dict | None = None) -> SavedView:
    """Save ``filters`` as the person's view ``name``.

    A view of that name that holds other filters is replaced only when ``confirmed`` is what
    it held when the person agreed to replace it; otherwise EditConflict (nothing is written).
    """
    wanted = {"filters": filters, "project_id": str(project.id) if project else None}
    view = view_named(user_id, name)
    if view is None:
        view = SavedView(user_id=user_id, name=name)
        db.session.add(view)
    else:
        current = view_values(view)
        if current != wanted and current != confirmed:
            raise edits.EditConflict(
                [edits.Conflict("filters", f"The view “{name}”", confirmed, current, wanted)], current
            )
    view.filters = filters
    view.project_id = project.id if project else None
    db.session.flush()
    return view


def view_url(view: SavedView, project=None) -> str:
    """The list page showing the view's filters (of its project, if it has one)."""
    if project is None and view.project_id:
        project = Project.get_scoped(db.session, view.project_id)
    args = {k: v for k, v in view.filters.items() if v}
    if project:
        return url_for("issues.project_list", project_key=project.key, **args)
    return url_for("issues.all_issues", **args)


class ViewError(Exception):
    """A change to a saved view that cannot be made; the message says why."""


def visible_view(view_id, user_id) -> SavedView | None:
    """The saved view if the person may see it: their own, or one shared with the organization."""
    view = SavedView.get_scoped(db.session, view_id)
    if view is None or not (view.user_id == user_id or view.shared):
        return None
    return view


def refusal(view: SavedView, user_id, is_admin: bool) -> str | None:
    """Why the person may not rename, share, unshare or delete the view (None: they may)."""
    if view.user_id == user_id or (view.shared and is_admin):
        return None
    return "Only the person who saved this view, or an admin, may change or delete it."


#: What the views screen's form edits, as ``edit_values`` gives it.
EDIT_FIELDS = {"name": "The name", "shared": "Who sees it"}


def edit_values(view: SavedView) -> dict:
    return {"name": view.name, "shared": view.shared}


def update_view(view: SavedView, loaded: dict, submitted: dict) -> bool:
    """Rename the view and share it or keep it personal; whether anything changed.

    Only what the person changed since ``loaded`` is written; a field someone else changed
    meanwhile is an EditConflict, a name its owner already uses for another view a ViewError.
    """
    view = edits.locked(view)
    to_write = edits.merge(edit_values(view), loaded, submitted, EDIT_FIELDS)
    if "name" in to_write:
        taken = db.session.scalar(
            select(SavedView.id).where(
                SavedView.user_id == view.user_id, SavedView.name == to_write["name"], SavedView.id != view.id
            )
        )
        if taken is not None:
            raise ViewError(f"There is already a view named “{to_write['name']}”.")
    for name, value in to_write.items():
        setattr(view, name, value)
    db.session.flush()
    return bool(to_write)
