"""API: projects and their workflow states, labels, and the organization's members."""

from spectree import Response
from sqlalchemy import select

from app import plans
from app.api import bp, pagination, represent, schemas
from app.api.auth import maker, needs
from app.api.idempotency import idempotent
from app.api.problems import ApiProblem
from app.api.spec import spec
from app.extensions import db
from app.labels import services as labels
from app.models import Label, Membership, Project, User
from app.models.labels import DEFAULT_LABEL_COLOR
from app.projects import services as projects
from app.projects.workflow import states_of


def _project(key: str) -> Project:
    project = projects.project_by_key(key)
    if project is None:
        raise ApiProblem(404, f"No project with the key {key} in this organization.")
    return project


@bp.get("/projects")
@spec.validate(query=schemas.Page, resp=Response(HTTP_200=schemas.ProjectPage), tags=["Projects"])
@needs("projects:read")
def list_projects(query: schemas.Page):
    """List the projects

    Archived projects are listed too (``archived``)."""
    return pagination.listing(
        schemas.ProjectPage,
        select(Project),
        Project.id,
        query,
        lambda rows: [represent.project(r) for r in rows],
    )


@bp.post("/projects")
@idempotent
@spec.validate(json=schemas.NewProject, resp=Response(HTTP_201=schemas.Project), tags=["Projects"])
@needs("projects:write")
def create_project(json: schemas.NewProject):
    """Create a project"""
    try:
        project = projects.create_project(maker(), json.name, json.key, json.description)
    except projects.ProjectError as problem:  # the key is taken
        raise ApiProblem(409, str(problem)) from None
    except plans.QuotaExceeded as problem:
        raise ApiProblem(403, str(problem)) from None
    return represent.project(project), 201


@bp.get("/projects/<project_key>")
@spec.validate(resp=Response(HTTP_200=schemas.Project), tags=["Projects"])
@needs("projects:read")
def get_project(project_key: str):
    """Get a project by its key"""
    return represent.project(_project(project_key))


@bp.get("/projects/<project_key>/states")
@spec.validate(resp=Response(HTTP_200=schemas.StateList), tags=["Projects"])
@needs("projects:read")
def list_states(project_key: str):
    """List a project's workflow states

    In board order; an issue's ``state`` is one of these keys."""
    project = _project(project_key)
    states = states_of(project.key)
    return schemas.StateList(
        data=[schemas.State(key=s.key, name=s.name, category=s.category) for s in states]
    )


@bp.get("/labels")
@spec.validate(query=schemas.Page, resp=Response(HTTP_200=schemas.LabelPage), tags=["Labels"])
@needs("projects:read")
def list_labels(query: schemas.Page):
    """List the labels"""
    return pagination.listing(
        schemas.LabelPage, select(Label), Label.id, query, lambda rows: [represent.label(r) for r in rows]
    )


@bp.post("/labels")
@idempotent
@spec.validate(json=schemas.NewLabel, resp=Response(HTTP_201=schemas.Label), tags=["Labels"])
@needs("labels:write")
def create_label(json: schemas.NewLabel):
    """Create a label

    ``color`` is one of the palette's colours (the label page shows them); gray when left out."""
    try:
        label = labels.create_label(json.name, json.color or DEFAULT_LABEL_COLOR)
    except labels.LabelError as problem:  # the name is taken
        raise ApiProblem(409, str(problem)) from None
    return represent.label(label), 201


@bp.get("/members")
@spec.validate(query=schemas.Page, resp=Response(HTTP_200=schemas.MemberPage), tags=["Members"])
@needs("members:read")
def list_members(query: schemas.Page):
    """List the members"""
    return pagination.listing(schemas.MemberPage, select(Membership), Membership.id, query, _members)


def _members(rows) -> list[schemas.Member]:
    users = {u.id: u for u in _users([row.user_id for row in rows])}
    return [
        schemas.Member(
            id=row.user_id, name=users[row.user_id].name, email=users[row.user_id].email, role=row.role
        )
        for row in rows
        if row.user_id in users
    ]


def _users(ids) -> list[User]:
    return list(db.session.scalars(select(User).where(User.id.in_(ids)))) if ids else []
