"""Editing an issue from its page: the form's fields, the values it carries as loaded, and saving
only what the person changed, refused when another change since collides with theirs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from app.core import edits
from app.issues.page_queries import ShownIssue
from app.issues.services import refuse_conflicts, set_assignees, set_labels, update_issue
from app.models import Issue

#: The fields of the issue form, in the form's order, with their names for people.
EDIT_FIELDS = {
    "title": "Title",
    "description": "Description",
    "state": "State",
    "priority": "Priority",
    "assignees": "Assignees",
    "labels": "Labels",
    "due_date": "Due date",
    "estimate": "Estimate",
}


def edit_values(
    issue: Issue | ShownIssue,
    label_ids: Iterable[str] | None = None,
    assignee_ids: Iterable[str] | None = None,
) -> dict:
    """The issue's editable values as plain JSON values (what an edit form carries as loaded);
    ``label_ids`` and ``assignee_ids``, when given, are its labels' and assignees' (then
    ``issue.labels`` and ``issue.assignees`` are not read)."""
    if label_ids is None:
        label_ids = (str(label.id) for label in issue.labels)
    if assignee_ids is None:
        assignee_ids = (str(user.id) for user in issue.assignees)
    return {
        "title": issue.title,
        "description": issue.description or "",
        "state": issue.state,
        "priority": issue.priority,
        "assignees": sorted(assignee_ids),
        "labels": sorted(label_ids),
        "due_date": issue.due_date.isoformat() if issue.due_date else None,
        "estimate": issue.estimate,
    }


def submitted_values(form, names=EDIT_FIELDS) -> dict:
    """The values of ``form``'s fields ``names`` in the shape of ``edit_values``."""
    return {name: _submitted(name, form[name].data) for name in names}


def _submitted(name: str, data):
    if name in ("title", "description"):
        return (data or "").strip()
    if name in ("assignees", "labels"):
        return sorted(set(data or []))
    if name == "priority":
        return int(data)
    if name == "due_date":
        return data.isoformat() if data else None
    return data


def save_edit(issue: Issue, actor, loaded: dict, submitted: dict) -> list[str]:
    """Apply the fields the person changed since ``loaded``; refuse (EditConflict) if another
    change since collides with one of them. ``issue`` must be read under a row lock."""
    current = edit_values(issue)
    try:
        to_write = edits.merge(current, loaded, submitted, EDIT_FIELDS)
    except edits.EditConflict as conflict:
        refuse_conflicts(conflict.conflicts, issue, current)
    scalars = {name: value for name, value in to_write.items() if name not in ("assignees", "labels")}
    if scalars.get("due_date"):
        scalars["due_date"] = date.fromisoformat(scalars["due_date"])
    changed = update_issue(issue, actor, **scalars)
    if "assignees" in to_write:
        set_assignees(issue, actor, to_write["assignees"])
        changed.append("assignees")
    if "labels" in to_write:
        set_labels(issue, actor, to_write["labels"])
        changed.append("labels")
    return changed
