"""Projects: keys, creation, archiving, and the issue-number counter."""

from __future__ import annotations

import re

from flask import abort
from sqlalchemy import func, select, update

from app.core import audit, edits
from app.extensions import db
from app.models import Project
from app.models.base import utcnow
from app.plans import quotas

KEY_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")


class ProjectError(ValueError):
    """A refusal shown to the user as it is."""


def key_problem(key: str) -> str | None:
    if not KEY_PATTERN.match(key):
        return "Use 2 to 10 capital letters or digits, starting with a letter (like WEB or API2)."
    taken = db.session.scalar(select(func.count()).select_from(Project).where(Project.key == key))
    if taken:
        return f"The key {key} is already used by another project."
    return None


def suggest_key(name: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", name.upper())
    key = "".join(w[0] for w in words) if len(words) > 1 else (words[0][:4] if words else "PRJ")
    key = re.sub(r"^[0-9]+", "", key) or "PRJ"
    return key[:10] if len(key) >= 2 else (key + "X")[:10]


def create_project(actor, name: str, key: str, description: str = "") -> Project:
    """A new project (``ProjectError`` for a bad key, ``QuotaExceeded`` when the plan is full)."""
    key = key.strip().upper()
    if problem := key_problem(key):
        raise ProjectError(problem)
    quotas.check(None, "projects")
    project = Project(name=name.strip(), key=key, description=description.strip(), created_by_id=actor.id)
    db.session.add(project)
    db.session.flush()
    audit.record("project.created", target=project, key=key, name=project.name)
    return project


#: The fields of the settings form, with their names for people.
SETTINGS_FIELDS = {"name": "Name", "description": "Description"}


def settings_values(project: Project) -> dict:
    return {"name": project.name, "description": project.description or ""}


def update_settings(project: Project, loaded: dict, submitted: dict) -> list[str]:
    """Apply the settings the person changed since ``loaded`` (EditConflict if another change
    collides); returns the names of the fields written, audited when there are any."""
    project = edits.locked(project)
    to_write = edits.merge(settings_values(project), loaded, submitted, SETTINGS_FIELDS)
    for name, value in to_write.items():
        setattr(project, name, value)
    if to_write:
        audit.record("project.updated", target=project, key=project.key, fields=sorted(to_write))
    return sorted(to_write)


def set_archived(project: Project, archived: bool) -> None:
    """Archive the project, or make it active again (``QuotaExceeded`` when the plan's active
    projects are all taken)."""
    if not archived and project.archived:
        quotas.check(None, "projects")
    project.archived_at = utcnow() if archived else None
    audit.record("project.archived" if archived else "project.unarchived", target=project, key=project.key)


def next_issue_number(project: Project) -> int:
    """Take the project's next issue number.

    One ``UPDATE … RETURNING`` on the project row: concurrent creators queue on the row
    lock, so numbers never collide, and a rolled-back creation gives its number back, so
    they never skip.
    """
    return db.session.execute(
        update(Project)
        .where(Project.id == project.id)
        .values(issue_counter=Project.issue_counter + 1)
        .returning(Project.issue_counter)
    ).scalar_one()


def project_by_key(key: str) -> Project | None:
    return db.session.scalar(select(Project).where(Project.key == key.upper()))


def project_or_404(project_key: str) -> Project:
    """The project with this key in the current organization, or 404."""
    project = project_by_key(project_key)
    if project is None:
        abort(404)
    return project
