"""Issue pages: the lists, an issue with its comments and history (edit, comment, watch, move),
my work, search. The board, saved views and the inbox have their own modules."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from wtforms import SelectChoice

from app.auth.identity import signed_in
from app.core import cache, edits
from app.core.database import commit_now
from app.core.markdown import RENDERER_VERSION, stored_html
from app.core.permissions import require
from app.extensions import cache as app_cache
from app.extensions import db
from app.issues import bp, queries
from app.issues import services as issues
from app.issues.board import board_response
from app.issues.forms import CommentForm, IssueEditForm, IssueForm, MoveForm
from app.issues.queries import LIST_TOPICS, SORTS, IssueFilters, issue_or_404, list_issues
from app.models import Issue
from app.models.base import utcnow
from app.models.work import PRIORITY_LABELS, STATE_LABELS, STATES
from app.orgs.context import current_access
from app.orgs.forms import ConfirmForm
from app.projects.services import project_or_404


def _list_context(filters: IssueFilters, project=None):
    """The list page's parts; the rows fragment comes from the cache when nothing changed."""
    key = _list_cache_key(filters, project)
    cached = app_cache.get(key)
    if cached is None:
        page = list_issues(
            filters,
            project_id=project.id if project else None,
            user_id=current_user.id,
            cursor=request.args.get("after"),
        )
        rows_html = render_template(
            "issues/_rows.html",
            issues=page.issues,
            project=project,
            state_labels=STATE_LABELS,
            priority_labels=PRIORITY_LABELS,
        )
        cached = {"rows": str(rows_html), "next": page.next_cursor, "count": len(page.issues)}
        app_cache.set(key, cached, timeout=cache.DEFAULT_TIMEOUT)
    views = queries.saved_views_of(signed_in().user_id)
    members, labels = queries.filter_choices()
    return {
        "rows_html": Markup(cached["rows"]),
        "row_count": cached["count"],
        "next_cursor": cached["next"],
        "filters": filters,
        "project": project,
        "members": members,
        "labels": labels,
        "sorts": SORTS,
        "state_labels": STATE_LABELS,
        "priority_labels": PRIORITY_LABELS,
        "saved_views": views,
    }


def _list_cache_key(filters: IssueFilters, project) -> str:
    me = current_user.id if filters.assignee == "me" else ""
    token = hashlib.sha256(
        f"{filters.cache_token()}|{request.args.get('after', '')}|{me}".encode()
    ).hexdigest()[:24]
    # Any issue change or membership change moves a version, so a stale list is never served.
    versions = f"v{cache.version('issues')}.{cache.version('members')}"
    return cache.tenant_key("issue-rows", versions, project.id if project else "all", token)


@bp.get("/issues")
@require("work.view")
def all_issues():
    return cache.cached_page(
        "issues",
        lambda: render_template("issues/list.html", **_list_context(IssueFilters.from_args(request.args))),
        *LIST_TOPICS,
    )


@bp.get("/projects/<project_key>/issues")
@require("work.view")
def project_list(project_key):
    def render():
        project = project_or_404(project_key)
        filters = IssueFilters.from_args(request.args)
        return render_template("issues/list.html", **_list_context(filters, project))

    return cache.cached_page("project-issues", render, *LIST_TOPICS)


def _fill_choices(form: IssueForm) -> None:
    people, labels = queries.filter_choices()
    form.assignees.choices = [SelectChoice(person.id, person.name) for person in people]
    form.labels.choices = [SelectChoice(label.id, label.name) for label in labels]


@bp.route("/projects/<project_key>/issues/new", methods=["GET", "POST"])
@require("work.edit")
def new_issue(project_key):
    project = project_or_404(project_key)
    form = IssueForm()
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            issue = issues.create_issue(
                project,
                current_user,
                form.title.data,
                form.description.data or "",
                state=form.state.data,
                priority=int(form.priority.data),
                assignee_ids=form.assignees.data,
                label_ids=form.labels.data,
                due_date=form.due_date.data,
                estimate=form.estimate.data,
            )
        except issues.IssueError as exc:
            db.session.rollback()
            form.assignees.errors.append(str(exc))
        else:
            ref = issue.ref
            flash(f"Created {ref}.", "success")
            return redirect(url_for("issues.show", issue_ref=ref), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("issues/new.html", form=form, project=project), status


def _edit_form(values: dict, loaded: dict) -> IssueEditForm:
    """The edit form showing ``values``, carrying ``loaded`` (both as ``services.edit_values``)."""
    data = dict(values)
    data["priority"] = str(data["priority"])
    data["due_date"] = date.fromisoformat(data["due_date"]) if data["due_date"] else None
    form = IssueEditForm(formdata=None, data=data)
    form.loaded.data = edits.encode(loaded)
    return form


def _submitted(form: IssueEditForm) -> dict:
    """The form's values in the shape of ``services.edit_values``."""
    return {
        "title": (form.title.data or "").strip(),
        "description": (form.description.data or "").strip(),
        "state": form.state.data,
        "priority": int(form.priority.data),
        "assignees": sorted(set(form.assignees.data or [])),
        "labels": sorted(set(form.labels.data or [])),
        "due_date": form.due_date.data.isoformat() if form.due_date.data else None,
        "estimate": form.estimate.data,
    }


#: What an issue's page shows besides the issue's own rows: people's names (and who a mention
#: names), label names, the project's name.
PAGE_TOPICS = ("members", "labels", "projects")


def _page_topics(issue_id) -> tuple:
    return (("issue", issue_id), *PAGE_TOPICS)


def _issue_parts(issue_id, issue: Issue | None = None) -> dict:
    """The parts of an issue's page that are the same for everyone who may see it: the title,
    description, comments and history, the details, who watches, the values of the edit form.

    Cached per organization and issue under the versions of everything they show: a change to
    the issue or any of its rows, to a member or a label moves one of them.
    """
    numbers = ".".join(map(str, cache.versions(*_page_topics(issue_id))))
    key = cache.tenant_key("issue-parts", issue_id, f"v{numbers}.r{RENDERER_VERSION}")
    parts = app_cache.get(key)
    if parts is None:
        # The versions were read before the data: a change committed meanwhile moves them again.
        parts = _render_parts(issue if issue is not None else queries.issue_by_id(issue_id))
        app_cache.set(key, parts, timeout=cache.DEFAULT_TIMEOUT)
    return parts


def _render_parts(issue: Issue) -> dict:
    mention_url = _mention_url(queries.members())

    def html_of(row) -> Markup:
        if isinstance(row, Issue):
            return stored_html(
                row.description, row.description_html, row.description_html_version, mention_url
            )
        return stored_html(row.body, row.body_html, row.body_html_version, mention_url)

    shown = {"state_labels": STATE_LABELS, "priority_labels": PRIORITY_LABELS}
    main = render_template(
        "issues/_issue_main.html",
        issue=issue,
        comments=queries.comments_of(issue),
        activity=queries.activity_of(issue),
        html_of=html_of,
        **shown,
    )
    return {
        "ref": issue.ref,
        "title": issue.title,
        "project_name": issue.project.name,
        "project_url": url_for("issues.project_list", project_key=issue.project.key),
        "main": str(main),
        "details": str(render_template("issues/_issue_details.html", issue=issue)),
        "watchers": queries.watcher_ids(issue),
        "values": issues.edit_values(issue),
    }


def _issue_page(issue_id, issue=None, form=None, comment_form=None, status=200, conflict=None, notice=None):
    """The issue's page: its shared parts (cached) around this viewer's own forms and buttons."""
    parts = _issue_parts(issue_id, issue)
    if form is None:
        form = _edit_form(parts["values"], parts["values"])
    _fill_choices(form)
    response = render_template(
        "issues/show.html",
        parts={**parts, "main": Markup(parts["main"]), "details": Markup(parts["details"])},
        form=form,
        comment_form=comment_form or CommentForm(),
        watching=str(signed_in().user_id) in parts["watchers"],
        confirm_form=ConfirmForm(),
        conflict=conflict,
        notice=notice,
    )
    return response, status


def _mention_url(members):
    handles = {u.email.split("@", 1)[0].lower(): u for u in members}

    def url(handle: str):
        user = handles.get(handle.lower())
        return url_for("issues.all_issues", assignee=str(user.id)) if user else None

    return url


@bp.get("/issues/<issue_ref>")
@require("work.view")
def show(issue_ref):
    """The issue's page; served from the cache, with an ETag, until anything on it changes."""
    issue_id, version = queries.issue_stamp_or_404(issue_ref)
    topics = _page_topics(issue_id)
    user_id = signed_in().user_id
    shown = (
        *cache.versions(*topics, ("notifications", user_id)),
        cache.user_version(user_id, "account"),
    )
    etag = hashlib.sha256(
        f"{issue_id}:{version}:{shown}:{user_id}:{current_access().role}".encode()
    ).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        response = make_response("", 304)
    else:
        response = make_response(cache.cached_page("issue", lambda: _issue_page(issue_id)[0], *topics))
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.post("/issues/<issue_ref>/edit")
@require("work.edit")
def edit(issue_ref):
    """Save the fields the person changed; 409 with their input kept if another change collides."""
    issue = issue_or_404(issue_ref)
    form = IssueEditForm()
    _fill_choices(form)
    if not form.validate_on_submit():
        return _issue_page(issue.id, issue, form=form, status=422)
    loaded = edits.decode(form.loaded.data, issues.EDIT_FIELDS)
    submitted = _submitted(form)
    try:
        issues.save_edit(issue, current_user, loaded, submitted)
    except edits.EditConflict as conflict:
        db.session.rollback()
        issue = issue_or_404(issue_ref)
        current = issues.edit_values(issue)
        form = _edit_form(edits.after_conflict(current, loaded, submitted), current)
        return _issue_page(issue.id, issue, form=form, status=409, conflict=conflict)
    except issues.IssueError as exc:
        db.session.rollback()
        issue = issue_or_404(issue_ref)
        form.assignees.errors.append(str(exc))
        return _issue_page(issue.id, issue, form=form, status=422)
    flash("Saved.", "success")
    return redirect(url_for("issues.show", issue_ref=issue_ref), 303)


@bp.post("/issues/<issue_ref>/comments")
@require("work.edit")
def comment(issue_ref):
    issue = issue_or_404(issue_ref)
    form = CommentForm()
    if form.validate_on_submit():
        issues.add_comment(issue, current_user, form.body.data)
        return redirect(url_for("issues.show", issue_ref=issue_ref) + "#comments", 303)
    return _issue_page(issue.id, issue, comment_form=form, status=422)


@bp.post("/issues/<issue_ref>/watch")
@require("work.view")
def watch(issue_ref):
    issue = issue_or_404(issue_ref)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    issues.set_watching(issue, current_user, request.form.get("watch") == "1")
    return redirect(url_for("issues.show", issue_ref=issue_ref), 303)


@bp.post("/issues/<issue_ref>/move")
@require("work.edit")
def move(issue_ref):
    """Move an issue to another board column: a plain form, or htmx swapping the board.

    The form says which column the card was in when the page was loaded; a card someone
    else moved since is not moved again (409, with the board as it is now).
    """
    issue = issue_or_404(issue_ref)
    form = MoveForm()
    if not form.validate_on_submit():
        abort(400, "Choose one of the listed states.")
    if form.from_state.data not in STATES:
        abort(400, edits.STALE_FORM)
    project_key = issue.project.key
    try:
        issues.move_issue(
            issue, current_user, form.state.data, request.form.get("before") or None, form.from_state.data
        )
    except edits.EditConflict as conflict:
        db.session.rollback()
        (moved,) = conflict.conflicts
        notice = (
            f"{issue_ref} was not moved: {moved.by or 'someone else'} moved it to {moved.theirs} "
            "since you loaded this page."
        )
        return _after_move_conflict(issue_ref, project_key, notice)
    except issues.IssueError as exc:
        abort(422, str(exc))
    if request.headers.get("HX-Request"):
        # The fragment is read from the cache, whose versions move at commit: commit first.
        commit_now("the board fragment in this answer must show the move")
        return board_response(project_or_404(project_key), partial=True)
    target = request.form.get("next")
    if target == "board":
        return redirect(url_for("issues.board", project_key=project_key), 303)
    return redirect(url_for("issues.show", issue_ref=issue_ref), 303)


def _after_move_conflict(issue_ref: str, project_key: str, notice: str):
    """The board (or the issue) as it is now, saying why the move did not happen: a 409."""
    if request.headers.get("HX-Request") or request.form.get("next") == "board":
        project = project_or_404(project_key)
        partial = bool(request.headers.get("HX-Request"))
        return board_response(project, partial=partial, notice=notice), 409
    issue = issue_or_404(issue_ref)
    return _issue_page(issue.id, issue, status=409, notice=notice)


@bp.get("/my-work")
@require("work.view")
def my_work():
    assigned = queries.open_assigned_to(current_user.id)
    soon = utcnow().date() + timedelta(days=7)
    due = [i for i in assigned if i.due_date and i.due_date <= soon]
    watched_recent = queries.watched_recently_updated(current_user.id)
    return render_template(
        "issues/my_work.html",
        assigned=assigned,
        due=sorted(due, key=lambda i: i.due_date),
        recent=watched_recent,
        state_labels=STATE_LABELS,
        priority_labels=PRIORITY_LABELS,
    )


@bp.get("/search")
@require("work.view")
def search():
    query = request.args.get("q", "").strip()[:200]
    hits, found = [], {}
    if query:
        from app.issues.search import search_issues

        page = search_issues(query, limit=30)
        hits = page.hits
        found = queries.issues_by_id([hit.issue_id for hit in hits])
    return render_template(
        "issues/search.html", query=query, hits=hits, issues=found, state_labels=STATE_LABELS
    )
