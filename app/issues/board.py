"""The board as HTML: its columns (cached) and the page or the htmx fragment around them."""

from __future__ import annotations

from flask import render_template
from markupsafe import Markup

from app.core import cache, page_cache
from app.core.csrf_tokens import csrf_token
from app.core.permissions import can
from app.extensions import cache as app_cache
from app.issues.queries import board_columns, column_counts
from app.models import Project
from app.models.work import PRIORITY_LABELS
from app.projects.workflow import state_names


def board_columns_html(project: Project, can_edit: bool) -> str:
    """The board's columns, cached per tenant, project, data version and edit rights."""
    versions = f"v{cache.version('issues')}.{cache.version('members')}"
    key = cache.tenant_key("board", versions, project.id, "edit" if can_edit else "read")
    html = app_cache.get(key)
    if html is None:
        html = str(
            render_template(
                "issues/_board_columns.html",
                project=project,
                columns=board_columns(project),
                counts=column_counts(project),
                state_labels=state_names(project.key),
                priority_labels=PRIORITY_LABELS,
                csrf_value=page_cache.CSRF_PLACEHOLDER,
                can_edit=can_edit,
            )
        )
        cache.store(key, html, timeout=cache.DEFAULT_TIMEOUT)
    return html.replace(page_cache.CSRF_PLACEHOLDER, csrf_token())


def board_response(project: Project, partial: bool = False, notice: str | None = None):
    """The board page, or only its columns for htmx (``partial``), with ``notice`` shown in them."""
    columns_html = board_columns_html(project, can("work.edit"))
    if notice:  # inside the swapped element, so htmx shows it too
        opening = 'id="board-columns">'
        alert = str(Markup('<p class="flash flash--error" role="alert">{}</p>').format(notice))
        columns_html = columns_html.replace(opening, opening + alert, 1)
    columns_html = Markup(columns_html)
    if partial:
        return columns_html
    return render_template(
        "issues/board.html", project=project, columns_html=columns_html, can_edit=can("work.edit")
    )
