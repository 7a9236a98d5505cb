"""API: issues (list, get, create, change with If-Match), their comments, and search."""

import uuid

import msgspec
from flask import current_app, g, request
from spectree import Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app import plans
from app.api import bp, pagination, references, represent, schemas
from app.api.auth import maker, needs
from app.api.idempotency import idempotent
from app.api.problems import ApiProblem
from app.api.spec import spec
from app.core.tenancy import require_tenant, tenant_context
from app.extensions import db
from app.issues import services as issues
from app.issues.queries import REF_PATTERN
from app.issues.search import cached_search_issues
from app.models import Comment, Issue, Project
from app.projects.services import project_by_key

_WITH_PEOPLE = (selectinload(Issue.assignees), selectinload(Issue.labels))
NDJSON = "application/x-ndjson"


def _issue(issue: str, lock: bool = False) -> Issue:
    """The issue named by its id or its key (``WEB-42``); under a row lock for a change."""
    statement = select(Issue).options(*_WITH_PEOPLE)
    try:
        statement = statement.where(Issue.id == uuid.UUID(issue))
    except ValueError:
        match = REF_PATTERN.match(issue)
        if not match:
            raise ApiProblem(404, "Name an issue by its id or its key, such as WEB-42.") from None
        statement = statement.join(Project).where(
            Project.key == match.group(1).upper(), Issue.number == int(match.group(2))
        )
    if lock:
        statement = statement.with_for_update(of=Issue).execution_options(populate_existing=True)
    row = db.session.scalar(statement)
    if row is None:
        raise ApiProblem(404, f"No issue {issue} in this organization.")
    return row


def _with_etag(row: Issue, status: int = 200):
    return represent.issue(row), status, {"ETag": represent.etag(row)}


@bp.get("/issues")
@spec.validate(query=schemas.IssueQuery, resp=Response(HTTP_200=schemas.IssuePage), tags=["Issues"])
@needs("issues:read")
def list_issues(query: schemas.IssueQuery):
    """List issues

    In the order they were made, optionally of one project and in one state."""
    statement = select(Issue).options(*_WITH_PEOPLE)
    if query.project is not None:
        project = project_by_key(query.project)
        statement = statement.where(Issue.project_id == (project.id if project else None))
    if query.state is not None:
        statement = statement.where(Issue.state == query.state)
    return pagination.listing(
        schemas.IssuePage, statement, Issue.id, query, lambda rows: [represent.issue(r) for r in rows]
    )


#: Issues read (and written out) at a time by the streamed listing.
STREAM_BATCH = 500


@bp.get("/issues/stream")
@spec.validate(
    query=schemas.IssueFilter, resp=Response(HTTP_200=None), tags=["Issues"], skip_validation=False
)
@needs("issues:read")
def stream_issues(query: schemas.IssueFilter):
    """Stream every issue as NDJSON

    All the issues (optionally of one project and in one state), one JSON object per line in the
    order they were made, written as they are read, a batch at a time: the listing of an
    organization of any size in one request, in memory that does not grow with it."""
    project_id = None
    if query.project is not None:
        project = project_by_key(query.project)
        project_id = project.id if project is not None else uuid.UUID(int=0)
    state, app, tenant_id = query.state, current_app._get_current_object(), require_tenant()
    org_slug = g.access.slug
    encoder = msgspec.json.Encoder()

    def generate():
        after = None
        while True:
            # Each batch in an app context of its own, as this organization: a body read slowly
            # holds no context or connection between batches.
            with app.app_context(), tenant_context(tenant_id):
                statement = select(Issue).options(*_WITH_PEOPLE).order_by(Issue.id).limit(STREAM_BATCH)
                if project_id is not None:
                    statement = statement.where(Issue.project_id == project_id)
                if state is not None:
                    statement = statement.where(Issue.state == state)
                if after is not None:
                    statement = statement.where(Issue.id > after)
                rows = list(db.session.scalars(statement))
                chunk = b"".join(encoder.encode(represent.issue(row, org_slug)) + b"\n" for row in rows)
            if chunk:
                yield chunk
            if len(rows) < STREAM_BATCH:
                return
            after = rows[-1].id

    # A body, a status and headers: SpecTree hands the generator to Flask as it is (a response
    # object it would read whole, to check it).
    return generate(), 200, {"Content-Type": NDJSON}


@bp.post("/issues")
@idempotent
@spec.validate(json=schemas.NewIssue, resp=Response(HTTP_201=schemas.Issue), tags=["Issues"])
@needs("issues:write")
def create_issue(json: schemas.NewIssue):
    """Create an issue"""
    project = references.open_project(json.project)
    references.state(project, json.state)
    references.members(json.assignees)
    references.labels(json.labels)
    try:
        row = issues.create_issue(
            project,
            maker(),
            json.title,
            json.description,
            state=json.state,
            priority=json.priority,
            assignee_ids=json.assignees,
            label_ids=json.labels,
            due_date=json.due_date,
            estimate=json.estimate,
        )
    except issues.IssueError as problem:
        raise ApiProblem(422, str(problem)) from None
    except plans.QuotaExceeded as problem:
        raise ApiProblem(403, str(problem)) from None
    return _with_etag(_issue(str(row.id)), 201)


@bp.get("/issues/<issue>")
@spec.validate(resp=Response(HTTP_200=schemas.Issue), tags=["Issues"])
@needs("issues:read")
def get_issue(issue: str):
    """Get an issue by its id or key

    The answer's ETag is the issue's version: send it back in If-Match to change the issue."""
    return _with_etag(_issue(issue))


def _check_version(row: Issue) -> None:
    wanted = request.headers.get("If-Match")
    if wanted is None:
        raise ApiProblem(
            428, "Send If-Match with the ETag of the issue as you read it, so no change is lost."
        )
    tags = [tag.strip().removeprefix("W/") for tag in wanted.split(",")]
    if "*" not in tags and represent.etag(row) not in tags:
        raise ApiProblem(
            412,
            f"The issue changed since you read it (it is at version {row.version}): read it again and "
            "apply your change to what it is now.",
            headers={"ETag": represent.etag(row)},
        )


@bp.patch("/issues/<issue>")
@spec.validate(json=schemas.IssueChanges, resp=Response(HTTP_200=schemas.Issue), tags=["Issues"])
@needs("issues:write")
def update_issue(issue: str, json: schemas.IssueChanges):
    """Change an issue

    Only the fields sent change. ``If-Match`` must carry the issue's ETag as it was read: a change
    made meanwhile by someone else is never overwritten (412)."""
    row = _issue(issue, lock=True)
    _check_version(row)
    changes = {
        name: value
        for name in ("title", "description", "state", "priority", "due_date", "estimate")
        if (value := getattr(json, name)) is not msgspec.UNSET
    }
    references.state(row.project, changes.get("state"))
    for named, check in ((json.assignees, references.members), (json.labels, references.labels)):
        if named is not msgspec.UNSET:
            check(named)
    actor = maker()
    try:
        issues.update_issue(row, actor, **changes)
        if json.assignees is not msgspec.UNSET:
            issues.set_assignees(row, actor, json.assignees)
        if json.labels is not msgspec.UNSET:
            issues.set_labels(row, actor, json.labels)
    except issues.IssueError as problem:
        raise ApiProblem(422, str(problem)) from None
    db.session.flush()
    return _with_etag(_issue(str(row.id)))


@bp.get("/issues/<issue>/comments")
@spec.validate(query=schemas.Page, resp=Response(HTTP_200=schemas.CommentPage), tags=["Comments"])
@needs("comments:read")
def list_comments(issue: str, query: schemas.Page):
    """List an issue's comments, oldest first"""
    row = _issue(issue)
    statement = select(Comment).where(Comment.issue_id == row.id)
    return pagination.listing(
        schemas.CommentPage, statement, Comment.id, query, lambda rows: [represent.comment(r) for r in rows]
    )


@bp.post("/issues/<issue>/comments")
@idempotent
@spec.validate(json=schemas.NewComment, resp=Response(HTTP_201=schemas.Comment), tags=["Comments"])
@needs("comments:write")
def create_comment(issue: str, json: schemas.NewComment):
    """Comment on an issue"""
    row = _issue(issue, lock=True)
    try:
        comment = issues.add_comment(row, maker(), json.body)
    except issues.IssueError as problem:
        raise ApiProblem(422, str(problem)) from None
    return represent.comment(comment), 201


@bp.get("/search")
@spec.validate(query=schemas.SearchQuery, resp=Response(HTTP_200=schemas.SearchResult), tags=["Search"])
@needs("issues:read")
def search(query: schemas.SearchQuery):
    """Search issues

    The words are matched as on the search page (titles, descriptions, comments); best first."""
    found = cached_search_issues(query.q, limit=query.limit)
    return schemas.SearchResult(
        data=[
            schemas.SearchHit(
                id=h.issue_id, key=h.ref, title=h.title, state=h.state, excerpt=h.snippet.striptags()
            )
            for h in found.hits
        ]
    )
