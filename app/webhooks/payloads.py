"""What events say: an issue's and a comment's public fields, as the ``data`` of a webhook event."""

from __future__ import annotations

from flask import g, has_request_context

from app.core.mail import public_url
from app.core.tenancy import require_tenant
from app.extensions import db
from app.models import Comment, Issue, Organization
from app.models.work import PRIORITY_LABELS


def _org_slug() -> str:
    access = g.get("access") if has_request_context() else None
    if access is not None:
        return access.slug
    return db.session.get(Organization, require_tenant()).slug


def _moment(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def issue_data(issue: Issue) -> dict:
    """An issue as events show it (the ``issue`` of ``issue.*`` and ``comment.*`` events)."""
    return {
        "id": str(issue.id),
        "ref": issue.ref,
        "project": {"id": str(issue.project_id), "key": issue.project.key, "name": issue.project.name},
        "number": issue.number,
        "title": issue.title,
        "description": issue.description,
        "state": issue.state,
        "priority": issue.priority,
        "priority_label": PRIORITY_LABELS.get(issue.priority, str(issue.priority)),
        "assignees": [{"id": str(u.id), "name": u.name, "email": u.email} for u in issue.assignees],
        "labels": [{"id": str(label.id), "name": label.name, "color": label.color} for label in issue.labels],
        "due_date": issue.due_date.isoformat() if issue.due_date else None,
        "estimate": issue.estimate,
        "created_at": _moment(issue.created_at),
        "updated_at": _moment(issue.updated_at),
        "closed_at": _moment(issue.closed_at),
        "url": public_url("issues.show", org_slug=_org_slug(), issue_ref=issue.ref),
    }


def issue_event(issue: Issue, changed: list[str] | None = None) -> dict:
    """The data of ``issue.created`` and ``issue.updated`` (with the fields that changed)."""
    data = {"issue": issue_data(issue)}
    if changed is not None:
        data["changed"] = list(changed)
    return data


def comment_event(comment: Comment, issue: Issue) -> dict:
    """The data of ``comment.created``."""
    author = comment.author
    return {
        "comment": {
            "id": str(comment.id),
            "body": comment.body,
            "author": {"id": str(author.id), "name": author.name} if author is not None else None,
            "created_at": _moment(comment.created_at),
        },
        "issue": issue_data(issue),
    }
