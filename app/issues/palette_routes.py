"""The keyboard's pages: what the command palette finds (JSON), and the choice of a project for a
new issue when the ``c`` shortcut is pressed outside a project."""

from __future__ import annotations

from flask import jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from app.core.permissions import require
from app.extensions import db
from app.issues import bp, palette
from app.models import Project


@bp.get("/palette")
@require("work.view")
def palette_results():
    """Projects and issues for the words in ``q``, as JSON; none for an empty question."""
    query = request.args.get("q", "").strip()[: palette.MAX_QUERY]
    projects = palette.matching_projects(query) if query else []
    issues = palette.matching_issues(query) if query else []
    response = jsonify(
        projects=[
            {**p._asdict(), "url": url_for("issues.project_list", project_key=p.key)} for p in projects
        ],
        issues=[{**i._asdict(), "url": url_for("issues.show", issue_ref=i.ref)} for i in issues],
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/new-issue")
@require("work.edit")
def choose_project():
    """The new-issue form of the organization's only active project, else a choice of them."""
    active = db.session.scalars(
        select(Project).where(Project.archived_at.is_(None)).order_by(Project.name)
    ).all()
    if len(active) == 1:
        return redirect(url_for("issues.new_issue", project_key=active[0].key))
    return render_template("issues/choose_project.html", projects=active)
