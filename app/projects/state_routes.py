"""A project's workflow states on its settings page: add, rename, reorder and delete (asking
first, and moving the state's issues to another state of the project)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for

from app.core.confirm import confirmation, confirmed
from app.core.permissions import require
from app.extensions import db
from app.projects import bp, workflow
from app.projects.forms import RenameStateForm, StateForm, StateMoveForm
from app.projects.services import project_or_404


def _back(project):
    return redirect(url_for("projects.settings", project_key=project.key) + "#states", 303)


def _refused(project, message: str):
    db.session.rollback()
    flash(message, "error")
    return _back(project)


def _form_error(form) -> str:
    return next((error for errors in form.errors.values() for error in errors), "That was not understood.")


def _change(project_key: str, form, change):
    """Apply ``change(project, form)`` (it answers what to say, or None) when the form is valid;
    a refusal is said on the settings page."""
    project = project_or_404(project_key)
    if not form.validate_on_submit():
        return _refused(project, _form_error(form))
    try:
        said = change(project, form)
    except workflow.WorkflowError as exc:
        return _refused(project, str(exc))
    if said:
        flash(said, "success")
    return _back(project)


@bp.post("/<project_key>/states")
@require("projects.manage")
def add_state(project_key):
    def add(project, form):
        return f"Added the state {workflow.add_state(project, form.name.data, form.category.data).name}."

    return _change(project_key, StateForm(prefix="state"), add)


@bp.post("/<project_key>/states/<state_key>/rename")
@require("projects.manage")
def rename_state(project_key, state_key):
    def rename(project, form):
        return f"The state is now called {workflow.rename_state(project, state_key, form.name.data).name}."

    return _change(project_key, RenameStateForm(), rename)


@bp.post("/<project_key>/states/<state_key>/move")
@require("projects.manage")
def move_state(project_key, state_key):
    def move(project, form):
        workflow.move_state(project, state_key, form.direction.data)

    return _change(project_key, StateMoveForm(), move)


@bp.route("/<project_key>/states/<state_key>/delete", methods=["GET", "POST"])
@require("projects.manage")
def delete_state(project_key, state_key):
    """Delete a state once confirmed; its issues go to the state ``move_to`` (the settings page's
    choice, carried in the address to the question and back)."""
    project = project_or_404(project_key)
    state = workflow.project_state(project.id, state_key)
    if state is None:
        return _refused(project, "That state is not one of this project's.")
    if problem := workflow.delete_problem(project, state_key):
        return _refused(project, problem)
    move_to = request.args.get("move_to") or None
    count = workflow.issue_count(project, state_key)
    target = workflow.project_state(project.id, move_to) if move_to else None
    if count and (target is None or target.key == state_key):
        return _refused(project, f"Choose where the issues in {state.name} go.")
    if request.method == "GET":
        moves = [f"Its {count} issue{'s' if count != 1 else ''} move to {target.name}."] if count else []
        return confirmation(
            f"Delete the state {state.name}?",
            [*moves, f"{state.name} leaves the board and every state menu of {project.name}."],
            "Delete this state",
            url_for("projects.settings", project_key=project.key) + "#states",
        )
    confirmed()
    try:
        moved = workflow.delete_state(project, state_key, move_to)
    except workflow.WorkflowError as exc:
        return _refused(project, str(exc))
    flash(
        f"Deleted {state.name}" + (f"; {moved} issues moved to {target.name}." if moved else "."), "success"
    )
    return _back(project)
