"""The issue lists: the organization's and a project's, with filters shown as chips, the number of
issues that match and pages both ways; each whole page cached per member and address."""

from __future__ import annotations

import hashlib
import uuid

from flask import make_response, redirect, render_template, request
from markupsafe import Markup

from app.auth.identity import signed_in, signed_in_id
from app.core import cache, page_cache
from app.core.permissions import require
from app.extensions import cache as app_cache
from app.issues import bp, queries
from app.issues.list_filters import MULTI, PAGE_ARGS, SORTS, IssueFilters, chips
from app.issues.list_queries import count_issues, list_issues, project_choices
from app.issues.queries import ISSUE_LIST_TOPICS
from app.models.work import PRIORITY_LABELS
from app.projects.services import project_or_404
from app.projects.workflow import names_by_project, organization_state_labels, state_names

#: Shown when the address names a page of the list that the list did not write.
BAD_CURSOR = "The link to that page of the list was not understood: this is the first page."


def _list_context(project=None):
    """The list page's parts; the rows, their count and the cursors come from the cache when
    nothing changed."""
    people, labels = queries.filter_choices()
    projects = project_choices() if project is None else None
    # A project's list offers its states; the organization's offers every project's, by key.
    state_labels = state_names(project.key) if project is not None else organization_state_labels()
    filters = IssueFilters.from_args(request.args).known(people, labels, projects, state_labels)
    key = _list_cache_key(filters, project)
    cached = app_cache.get(key)
    if cached is None:
        cached = _rows(filters, project, projects)
        cache.store(key, cached, timeout=cache.DEFAULT_TIMEOUT)
    ignored = [*filters.ignored, *([BAD_CURSOR] if cached["bad_cursor"] else [])]
    return {
        "rows_html": Markup(cached["rows"]),
        "row_count": cached["count"],
        "total": cached["total"],
        "next_url": cached["next"] and filters.url(request.path, after=cached["next"]),
        "previous_url": cached["previous"] and filters.url(request.path, before=cached["previous"]),
        "filters": filters,
        "chips": chips(filters, people, labels, projects or (), state_labels),
        "ignored": ignored,
        "project": project,
        "projects": projects or (),
        "members": people,
        "labels": labels,
        "sorts": SORTS,
        "state_labels": state_labels,
        "priority_labels": PRIORITY_LABELS,
        "saved_views": queries.saved_views_of(signed_in().user_id),
    }


def _rows(filters: IssueFilters, project, projects) -> dict:
    """The page of rows as HTML, how many issues match in all, and the cursors either side."""
    if project is not None:
        project_ids = [project.id]
    elif filters.projects:
        project_ids = [uuid.UUID(p.id) for p in projects if p.key in filters.projects]
    else:
        project_ids = None
    where = {"project_ids": project_ids, "user_id": signed_in_id()}
    page = list_issues(filters, after=request.args.get("after"), before=request.args.get("before"), **where)
    rows_html = render_template(
        "issues/_rows.html",
        issues=page.issues,
        project=project,
        state_labels=names_by_project(),
        priority_labels=PRIORITY_LABELS,
    )
    return {
        "rows": str(rows_html),
        "next": page.next_cursor,
        "previous": page.previous_cursor,
        "bad_cursor": page.bad_cursor,
        "count": len(page.issues),
        "total": count_issues(filters, **where),
    }


def _list_cache_key(filters: IssueFilters, project) -> str:
    me = signed_in_id() if "me" in filters.assignees else ""
    pages = "|".join(request.args.get(name, "") for name in PAGE_ARGS)
    token = hashlib.sha256(f"{filters.cache_token()}|{pages}|{me}".encode()).hexdigest()[:24]
    # Any issue change or membership change moves a version, so a stale list is never served.
    versions = f"v{cache.version('issues')}.{cache.version('members')}"
    return cache.tenant_key("issue-rows", versions, project.id if project else "all", token)


def _tidy_address():
    """A form submitted without the script names empty filters and the chip it removes: the
    same list at its shareable address (None when the address is that already)."""
    current = request._get_current_object()  # each read through the proxy costs about 1 µs
    if not current.query_string or current.environ.get("HTTP_HX_REQUEST"):
        return None  # no filters at all (the list as the menu links it), or the script at work
    args = current.args
    if not (
        "remove" in args or any(not v.strip() for name in (*MULTI, "q", "sort") for v in args.getlist(name))
    ):
        return None
    filters = IssueFilters.from_args(args)
    return redirect(filters.url(request.path), 303)


def _list_response(name: str, render):
    """The cached page; an htmx request (a filter added or removed) is told the list's address."""
    response = make_response(page_cache.cached_page(name, render, *ISSUE_LIST_TOPICS))
    if request._get_current_object().environ.get("HTTP_HX_REQUEST"):
        pages = {name: request.args.get(name) for name in PAGE_ARGS}
        response.headers["HX-Push-Url"] = IssueFilters.from_args(request.args).url(request.path, **pages)
    return response


@bp.get("/issues")
@require("work.view")
def all_issues():
    if tidy := _tidy_address():
        return tidy
    return _list_response("issues", lambda: render_template("issues/list.html", **_list_context()))


@bp.get("/projects/<project_key>/issues")
@require("work.view")
def project_list(project_key):
    if tidy := _tidy_address():
        return tidy

    def render():
        project = project_or_404(project_key)
        return render_template("issues/list.html", **_list_context(project))

    return _list_response("project-issues", render)
