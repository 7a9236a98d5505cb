"""What the command palette finds for the words typed: the organization's projects by key or name,
and its issues by reference (``WEB-12``) or by the words of the search (``cached_search_issues``).
Everything is read through the tenant scoping, so only the current organization's rows appear."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import and_, func, or_, select

from app.extensions import db
from app.issues.queries import REF_PATTERN
from app.issues.search import cached_search_issues
from app.models import Issue, Project

#: The longest question read (longer text is cut, as on the search page).
MAX_QUERY = 200
#: At most this many projects and issues are answered.
MAX_PROJECTS = 5
MAX_ISSUES = 8


class FoundProject(NamedTuple):
    key: str
    name: str
    archived: bool


class FoundIssue(NamedTuple):
    ref: str
    title: str
    state: str


def matching_projects(query: str) -> list[FoundProject]:
    """Projects whose key starts with the query, or whose name holds each of its words; active
    ones first, then by name."""
    words = query.lower().split()
    if not words:
        return []
    by_key = Project.key.startswith(query.strip().upper(), autoescape=True)
    by_name = and_(*(func.lower(Project.name).contains(word, autoescape=True) for word in words))
    statement = (
        select(Project.key, Project.name, Project.archived_at.is_not(None))
        .where(or_(by_key, by_name))
        .order_by(Project.archived_at.is_not(None), Project.name)
        .limit(MAX_PROJECTS)
    )
    return [FoundProject(*row) for row in db.session.execute(statement)]


def matching_issues(query: str) -> list[FoundIssue]:
    """The issue the query names by reference, if any, then the best matches of the search."""
    found: list[FoundIssue] = []
    match = REF_PATTERN.match(query.strip())
    if match:
        row = db.session.execute(
            select(Project.key, Issue.number, Issue.title, Issue.state)
            .join(Project)
            .where(Project.key == match.group(1).upper(), Issue.number == int(match.group(2)))
        ).first()
        if row is not None:
            found.append(FoundIssue(f"{row.key}-{row.number}", row.title, row.state))
    for hit in cached_search_issues(query, limit=MAX_ISSUES).hits:
        ref = f"{hit.project_key}-{hit.number}"
        if all(ref != issue.ref for issue in found):
            found.append(FoundIssue(ref, hit.title, hit.state))
    return found[:MAX_ISSUES]
