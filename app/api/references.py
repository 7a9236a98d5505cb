"""Objects a request body names (a project, a state, people, labels): each must exist in the
key's organization, or the answer is a 404 naming what is not there, as for an object in the
path. Nothing of another organization can be named: the reads are the organization's."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.api.problems import ApiProblem
from app.extensions import db
from app.models import Label, Membership, Project
from app.projects.services import project_by_key
from app.projects.workflow import project_state


def project(key: str) -> Project:
    found = project_by_key(key)
    if found is None:
        raise ApiProblem(404, f"No project with the key {key.upper()} in this organization.")
    return found


def open_project(key: str) -> Project:
    """The project, which must take new issues (409 while it is archived)."""
    found = project(key)
    if found.archived:
        raise ApiProblem(409, f"The project {found.key} is archived: unarchive it to add issues.")
    return found


def state(project_row: Project, key: str | None) -> None:
    if key is not None and project_state(project_row.id, key) is None:
        raise ApiProblem(404, f"The project {project_row.key} has no state {key}: see its states.")


def members(ids: list[uuid.UUID]) -> None:
    wanted = set(ids)
    found = set(db.session.scalars(select(Membership.user_id).where(Membership.user_id.in_(wanted))))
    if missing := wanted - found:
        raise ApiProblem(404, f"No member with the id {sorted(map(str, missing))[0]} in this organization.")


def labels(ids: list[uuid.UUID]) -> None:
    wanted = set(ids)
    found = set(db.session.scalars(select(Label.id).where(Label.id.in_(wanted))))
    if missing := wanted - found:
        raise ApiProblem(404, f"No label with the id {sorted(map(str, missing))[0]} in this organization.")
