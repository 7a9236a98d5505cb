"""The board of a project: its columns, and more cards of one column."""

from __future__ import annotations

from flask import abort, render_template, request

from app.core import page_cache
from app.core.csrf_tokens import csrf_token
from app.core.permissions import can, require
from app.issues import bp, queries
from app.issues.board import board_response
from app.models.work import PRIORITY_LABELS
from app.projects.services import project_or_404
from app.projects.workflow import state_names


@bp.get("/projects/<project_key>/board")
@require("work.view")
def board(project_key):
    def render():
        return board_response(project_or_404(project_key))

    return page_cache.cached_page("board", render, *queries.LIST_TOPICS)


@bp.get("/projects/<project_key>/board/<state>")
@require("work.view")
def board_column(project_key, state):
    """More cards of one column (the board pages each column on the server)."""
    project = project_or_404(project_key)
    names = state_names(project.key)
    if state not in names:
        abort(404)
    try:
        after = float(request.args.get("after", ""))
    except ValueError:
        after = None
    cards, has_more = queries.board_column(project, state, after)
    return render_template(
        "issues/_board_cards.html",
        project=project,
        state=state,
        cards=cards,
        has_more=has_more,
        csrf_value=csrf_token(),
        can_edit=can("work.edit"),
        state_labels=names,
        priority_labels=PRIORITY_LABELS,
    )
