"""Rows as the API shows them (``app.api.schemas``), with the links to their pages."""

from __future__ import annotations

from flask import g

from app.api import schemas
from app.core.mail import public_url


def _org_slug() -> str:
    return g.access.slug


def project(row) -> schemas.Project:
    return schemas.Project(
        id=row.id,
        key=row.key,
        name=row.name,
        description=row.description or "",
        archived=row.archived,
        created_at=row.created_at,
        url=public_url("projects.show", org_slug=_org_slug(), project_key=row.key),
    )


def issue(row, org_slug: str | None = None) -> schemas.Issue:
    """The issue as the API shows it (``org_slug``: its organization's address, when there is
    no request's organization to read it from)."""
    ref = row.ref
    return schemas.Issue(
        id=row.id,
        key=ref,
        number=row.number,
        project=row.project.key,
        title=row.title,
        description=row.description or "",
        state=row.state,
        priority=row.priority,
        due_date=row.due_date,
        estimate=row.estimate,
        assignees=[schemas.Ref(id=user.id, name=user.name) for user in row.assignees],
        labels=[schemas.Ref(id=label.id, name=label.name) for label in row.labels],
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
        version=row.version,
        url=public_url("issues.show", org_slug=org_slug or _org_slug(), issue_ref=ref),
    )


def comment(row) -> schemas.Comment:
    author = row.author
    return schemas.Comment(
        id=row.id,
        author=schemas.Ref(id=author.id, name=author.name) if author is not None else None,
        body=row.body,
        created_at=row.created_at,
    )


def label(row) -> schemas.Label:
    return schemas.Label(id=row.id, name=row.name, color=row.color)


def etag(row) -> str:
    """An issue's entity tag: its version (it moves with every change)."""
    return f'"{row.version}"'
