"""Projects of an organization: list, create, settings, archive."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from app.core import edits
from app.core.confirm import confirmation, confirmed
from app.core.permissions import can, require
from app.extensions import db
from app.models import Issue, Project
from app.orgs.forms import ConfirmForm
from app.plans.quotas import QuotaExceeded
from app.projects import bp, workflow
from app.projects import services as projects
from app.projects.forms import ProjectForm, ProjectSettingsForm, StateForm
from app.projects.services import project_or_404


@bp.get("/")
@require("work.view")
def index():
    all_projects = db.session.scalars(select(Project).order_by(Project.name)).all()
    open_counts = dict(
        db.session.execute(
            select(Issue.project_id, func.count()).where(Issue.closed_at.is_(None)).group_by(Issue.project_id)
        ).all()
    )
    return render_template(
        "projects/index.html",
        active=[p for p in all_projects if not p.archived],
        archived=[p for p in all_projects if p.archived],
        open_counts=open_counts,
    )


@bp.route("/new", methods=["GET", "POST"])
@require("projects.manage")
def new():
    form = ProjectForm()
    if request.method == "GET" and request.args.get("name"):
        form.name.data = request.args["name"]
    if form.validate_on_submit():
        try:
            project = projects.create_project(
                current_user, form.name.data, form.key.data, form.description.data or ""
            )
        except projects.ProjectError as exc:
            db.session.rollback()
            form.key.errors.append(str(exc))
        except QuotaExceeded as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            flash(f"Project {project.name} ({project.key}) is ready.", "success")
            return redirect(url_for("issues.project_list", project_key=project.key), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("projects/new.html", form=form), status


@bp.get("/<project_key>/")
@require("work.view")
def show(project_key):
    project = project_or_404(project_key)
    return redirect(url_for("issues.project_list", project_key=project.key))


def _settings_form(values: dict, loaded: dict) -> ProjectSettingsForm:
    form = ProjectSettingsForm(formdata=None, data=values)
    form.loaded.data = edits.encode(loaded)
    return form


def _settings_page(project, form, status=200, conflict=None):
    states = workflow.states_of(project.key)
    page = render_template(
        "projects/settings.html",
        project=project,
        form=form,
        confirm_form=ConfirmForm(),
        conflict=conflict,
        states=states,
        categories=workflow.CATEGORY_LABELS,
        issue_counts=workflow.issue_counts(project),
        delete_problems={state.key: workflow.delete_problem(project, state.key) for state in states},
        state_form=StateForm(prefix="state"),
    )
    return page, status


@bp.route("/<project_key>/settings", methods=["GET", "POST"])
@require("work.view")
def settings(project_key):
    project = project_or_404(project_key)
    if request.method == "GET":
        values = projects.settings_values(project)
        return _settings_page(project, _settings_form(values, values))
    if not can("projects.manage"):
        abort(403)
    form = ProjectSettingsForm()
    if not form.validate_on_submit():
        return _settings_page(project, form, 422)
    loaded = edits.decode(form.loaded.data, projects.SETTINGS_FIELDS)
    submitted = {"name": form.name.data.strip(), "description": (form.description.data or "").strip()}
    try:
        projects.update_settings(project, loaded, submitted)
    except edits.EditConflict as conflict:
        db.session.rollback()
        project = project_or_404(project_key)
        current = projects.settings_values(project)
        form = _settings_form(edits.after_conflict(current, loaded, submitted), current)
        return _settings_page(project, form, 409, conflict)
    flash("Project settings saved.", "success")
    return redirect(url_for("projects.settings", project_key=project.key), 303)


@bp.route("/<project_key>/archive", methods=["GET", "POST"])
@require("projects.manage")
def archive(project_key):
    """Archive a project once confirmed (the settings page then offers to make it active again),
    or make it active again (``archived=0``, not destructive, so no question)."""
    project = project_or_404(project_key)
    if request.method == "GET":
        return confirmation(
            f"Archive {project.name}?",
            [
                f"{project.name} becomes read-only: its issues can be read, not changed,"
                " and none can be added.",
                "It leaves the list of active projects. You can make it active again from its settings.",
            ],
            "Archive this project",
            url_for("projects.settings", project_key=project.key),
        )
    confirmed()
    archived = request.form.get("archived", "1") == "1"
    try:
        projects.set_archived(project, archived)
    except QuotaExceeded as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("projects.settings", project_key=project.key), 303)
    flash(f"{project.name} is {'archived' if archived else 'active again'}.", "success")
    return redirect(url_for("projects.settings", project_key=project.key), 303)
