"""Issue pages: lists, the board, an issue with its comments and history, my work, search."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import func, select, update
from wtforms import SelectChoice

from app.auth.identity import signed_in
from app.core import cache, edits
from app.core.names import invisible_text_problem
from app.core.permissions import can, require
from app.extensions import cache as app_cache
from app.extensions import db
from app.issues import bp
from app.issues import services as issues
from app.issues.forms import CommentForm, IssueEditForm, IssueForm, MoveForm
from app.issues.queries import SORTS, IssueFilters, list_issues
from app.models import (
    Comment,
    Issue,
    IssueActivity,
    IssueAssignee,
    IssueWatcher,
    Label,
    Membership,
    Notification,
    Project,
    SavedView,
    User,
)
from app.models.base import utcnow
from app.models.work import CLOSED_STATES, PRIORITY_LABELS, STATE_LABELS, STATES
from app.orgs.context import current_access
from app.orgs.forms import ConfirmForm
from app.projects.routes import project_or_404

REF_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9]{1,9})-(\d{1,9})$")
BOARD_PAGE = 25


def issue_or_404(issue_ref: str) -> Issue:
    """The issue a reference names. A POST reads it under a row lock (held until the commit),
    so the request's checks and writes see no other change in between."""
    match = REF_PATTERN.match(issue_ref)
    if not match:
        abort(404)
    statement = (
        select(Issue)
        .join(Project)
        .where(Project.key == match.group(1).upper(), Issue.number == int(match.group(2)))
    )
    if request.method == "POST":
        statement = statement.with_for_update(of=Issue).execution_options(populate_existing=True)
    issue = db.session.scalar(statement)
    if issue is None:
        abort(404)
    return issue


def _members():
    return db.session.scalars(
        select(User).join(Membership, Membership.user_id == User.id).order_by(User.name)
    ).all()


@dataclass(frozen=True)
class Choice:
    """A person or label as a filter choice (plain values, so it can be cached)."""

    id: str
    name: str


def _filter_choices() -> tuple[list[Choice], list[Choice]]:
    """Members and labels for the filter menus, cached per tenant until either changes."""

    def compute():
        members = [Choice(str(u.id), u.name) for u in _members()]
        labels = [Choice(str(label.id), label.name) for label in _labels()]
        return members, labels

    return cache.memoize_for_tenant("members", "filter-choices", compute, f"l{cache.version('labels')}")


def _labels():
    return db.session.scalars(select(Label).order_by(Label.name)).all()


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
    views = db.session.scalars(
        select(SavedView).where(SavedView.user_id == signed_in().user_id).order_by(SavedView.name)
    ).all()
    members, labels = _filter_choices()
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


#: What the list pages show besides the member's own things: issues with their people and
#: labels, the filter menus, the project.
LIST_TOPICS = ("issues", "members", "labels", "projects")


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


def _fill_choices(form: IssueForm, members=None) -> None:
    members = _members() if members is None else members
    form.assignees.choices = [SelectChoice(str(u.id), u.name) for u in members]
    form.labels.choices = [SelectChoice(str(label.id), label.name) for label in _labels()]


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
            cache.issues_changed()
            db.session.commit()
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


def _issue_page(issue: Issue, form=None, comment_form=None, status=200, conflict=None, notice=None):
    if form is None:
        values = issues.edit_values(issue)
        form = _edit_form(values, values)
    members = _members()
    _fill_choices(form, members)
    comments = db.session.scalars(
        select(Comment).where(Comment.issue_id == issue.id).order_by(Comment.created_at)
    ).all()
    activity = db.session.scalars(
        select(IssueActivity).where(IssueActivity.issue_id == issue.id).order_by(IssueActivity.created_at)
    ).all()
    watching = issues.is_watching(issue, current_user)
    response = render_template(
        "issues/show.html",
        issue=issue,
        form=form,
        comment_form=comment_form or CommentForm(),
        comments=comments,
        activity=activity,
        watching=watching,
        move_form=MoveForm(state=issue.state, from_state=issue.state),
        confirm_form=ConfirmForm(),
        state_labels=STATE_LABELS,
        priority_labels=PRIORITY_LABELS,
        mention_url=_mention_url(members),
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
    issue = issue_or_404(issue_ref)
    unread = unread_count()
    etag = hashlib.sha256(
        f"{issue.id}:{issue.version}:{current_user.id}:{unread}:{current_access().role}".encode()
    ).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        response = make_response("", 304)
    else:
        response = make_response(*_issue_page(issue))
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
        return _issue_page(issue, form=form, status=422)
    loaded = edits.decode(form.loaded.data, issues.EDIT_FIELDS)
    submitted = _submitted(form)
    try:
        issues.save_edit(issue, current_user, loaded, submitted)
    except edits.EditConflict as conflict:
        db.session.rollback()
        issue = issue_or_404(issue_ref)
        current = issues.edit_values(issue)
        form = _edit_form(edits.after_conflict(current, loaded, submitted), current)
        return _issue_page(issue, form=form, status=409, conflict=conflict)
    except issues.IssueError as exc:
        db.session.rollback()
        issue = issue_or_404(issue_ref)
        form.assignees.errors.append(str(exc))
        return _issue_page(issue, form=form, status=422)
    cache.issues_changed()
    db.session.commit()
    flash("Saved.", "success")
    return redirect(url_for("issues.show", issue_ref=issue_ref), 303)


@bp.post("/issues/<issue_ref>/comments")
@require("work.edit")
def comment(issue_ref):
    issue = issue_or_404(issue_ref)
    form = CommentForm()
    if form.validate_on_submit():
        issues.add_comment(issue, current_user, form.body.data)
        cache.issues_changed()
        db.session.commit()
        return redirect(url_for("issues.show", issue_ref=issue_ref) + "#comments", 303)
    return _issue_page(issue, comment_form=form, status=422)


@bp.post("/issues/<issue_ref>/watch")
@require("work.view")
def watch(issue_ref):
    issue = issue_or_404(issue_ref)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    issues.set_watching(issue, current_user, request.form.get("watch") == "1")
    db.session.commit()
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
    cache.issues_changed()
    db.session.commit()
    if request.headers.get("HX-Request"):
        return _board_response(project_or_404(project_key), partial=True)
    target = request.form.get("next")
    if target == "board":
        return redirect(url_for("issues.board", project_key=project_key), 303)
    return redirect(url_for("issues.show", issue_ref=issue_ref), 303)


def _after_move_conflict(issue_ref: str, project_key: str, notice: str):
    """The board (or the issue) as it is now, saying why the move did not happen: a 409."""
    if request.headers.get("HX-Request") or request.form.get("next") == "board":
        project = project_or_404(project_key)
        partial = bool(request.headers.get("HX-Request"))
        return _board_response(project, partial=partial, notice=notice), 409
    return _issue_page(issue_or_404(issue_ref), status=409, notice=notice)


# --- the board ----------------------------------------------------------------------------


def _column(project: Project, state: str, after_rank: float | None = None):
    statement = select(Issue).where(Issue.project_id == project.id, Issue.state == state)
    if after_rank is not None:
        statement = statement.where(Issue.rank > after_rank)
    cards = list(db.session.scalars(statement.order_by(Issue.rank, Issue.id).limit(BOARD_PAGE + 1)).unique())
    return cards[:BOARD_PAGE], len(cards) > BOARD_PAGE


def _column_counts(project: Project) -> dict[str, int]:
    rows = db.session.execute(
        select(Issue.state, func.count()).where(Issue.project_id == project.id).group_by(Issue.state)
    ).all()
    found = dict(rows)
    return {state: found.get(state, 0) for state in STATES}


def _board_columns_html(project: Project, can_edit: bool) -> str:
    """The board's columns, cached per tenant, project, data version and edit rights."""
    versions = f"v{cache.version('issues')}.{cache.version('members')}"
    key = cache.tenant_key("board", versions, project.id, "edit" if can_edit else "read")
    html = app_cache.get(key)
    if html is None:
        html = str(
            render_template(
                "issues/_board_columns.html",
                project=project,
                columns={state: _column(project, state) for state in STATES},
                counts=_column_counts(project),
                state_labels=STATE_LABELS,
                priority_labels=PRIORITY_LABELS,
                csrf_value=cache.CSRF_PLACEHOLDER,
                can_edit=can_edit,
            )
        )
        app_cache.set(key, html, timeout=cache.DEFAULT_TIMEOUT)
    return html.replace(cache.CSRF_PLACEHOLDER, generate_csrf())


def _board_response(project: Project, partial: bool = False, notice: str | None = None):
    columns_html = _board_columns_html(project, can("work.edit"))
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


@bp.get("/projects/<project_key>/board")
@require("work.view")
def board(project_key):
    return cache.cached_page("board", lambda: _board_response(project_or_404(project_key)), *LIST_TOPICS)


@bp.get("/projects/<project_key>/board/<state>")
@require("work.view")
def board_column(project_key, state):
    """More cards of one column (the board pages each column on the server)."""
    project = project_or_404(project_key)
    if state not in STATES:
        abort(404)
    try:
        after = float(request.args.get("after", ""))
    except ValueError:
        after = None
    cards, has_more = _column(project, state, after)
    return render_template(
        "issues/_board_cards.html",
        project=project,
        state=state,
        cards=cards,
        has_more=has_more,
        csrf_value=generate_csrf(),
        can_edit=can("work.edit"),
        state_labels=STATE_LABELS,
        priority_labels=PRIORITY_LABELS,
    )


# --- my work, search, notifications, saved views ---------------------------------------------


@bp.get("/my-work")
@require("work.view")
def my_work():
    assigned = (
        db.session.scalars(
            select(Issue)
            .join(IssueAssignee, IssueAssignee.issue_id == Issue.id)
            .where(IssueAssignee.user_id == current_user.id, Issue.state.not_in(CLOSED_STATES))
            .order_by(Issue.priority.desc(), Issue.updated_at.desc())
            .limit(50)
        )
        .unique()
        .all()
    )
    soon = utcnow().date() + timedelta(days=7)
    due = [i for i in assigned if i.due_date and i.due_date <= soon]
    watched_recent = (
        db.session.scalars(
            select(Issue)
            .join(IssueWatcher, IssueWatcher.issue_id == Issue.id)
            .where(IssueWatcher.user_id == current_user.id, Issue.updated_at >= utcnow() - timedelta(days=7))
            .order_by(Issue.updated_at.desc())
            .limit(20)
        )
        .unique()
        .all()
    )
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
        ids = [hit.issue_id for hit in hits]
        if ids:
            found = {i.id: i for i in db.session.scalars(select(Issue).where(Issue.id.in_(ids))).unique()}
    return render_template(
        "issues/search.html", query=query, hits=hits, issues=found, state_labels=STATE_LABELS
    )


def unread_count() -> int:
    """The member's unread notifications here (once per request: the ETag and the layout use it)."""
    if "unread_count" not in g:
        user_id = signed_in().user_id

        def compute():
            return db.session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            )

        g.unread_count = cache.memoize_for_tenant(("notifications", user_id), "unread", compute, user_id)
    return g.unread_count


@bp.get("/notifications")
@require("work.view")
def notifications():
    items = (
        db.session.scalars(
            select(Notification)
            .where(Notification.user_id == current_user.id)
            .order_by(Notification.read_at.is_not(None), Notification.created_at.desc())
            .limit(100)
        )
        .unique()
        .all()
    )
    return render_template("issues/notifications.html", items=items, confirm_form=ConfirmForm())


@bp.post("/notifications/read-all")
@require("work.view")
def read_all():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    db.session.execute(
        update(Notification)
        .where(Notification.user_id == current_user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    cache.notifications_changed(current_user.id)
    db.session.commit()
    return redirect(url_for("issues.notifications"), 303)


@bp.post("/notifications/<uuid:notification_id>/read")
@require("work.view")
def read_one(notification_id):
    item = Notification.get_scoped(db.session, notification_id)
    if item is None or item.user_id != current_user.id:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    ref = item.issue.ref
    item.read_at = item.read_at or utcnow()
    cache.notifications_changed(current_user.id)
    db.session.commit()
    return redirect(url_for("issues.show", issue_ref=ref), 303)


@bp.post("/views")
@require("work.view")
def save_view():
    """Save the filters on screen under a name. A view of that name with other filters is
    replaced only once the person confirmed it, as it was when they confirmed (else 409)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = request.form.get("name", "").strip()[:80]
    if not name:
        abort(400, "Name the view.")
    if problem := invisible_text_problem(name):
        abort(400, problem)
    filters = IssueFilters.from_args(request.form)
    project = project_or_404(request.form["project_key"]) if request.form.get("project_key") else None
    confirmed = None
    if request.form.get("replace"):
        confirmed = edits.decode(request.form.get(edits.LOADED_FIELD), issues.VIEW_FIELDS)
    try:
        view = issues.save_view(current_user.id, name, filters.as_dict(), project, confirmed)
    except edits.EditConflict as conflict:
        db.session.rollback()
        existing = issues.view_named(current_user.id, name)
        return render_template(
            "issues/replace_view.html",
            name=name,
            fields=[(k, v) for k, v in request.form.items(multi=True) if k not in ("csrf_token", "loaded")],
            loaded=edits.encode(issues.view_values(existing)),
            existing_url=_view_url(existing),
            changed_meanwhile=confirmed is not None,
            conflict=conflict,
        ), 409
    cache.views_changed(current_user.id)
    db.session.commit()
    flash(f"Saved the view “{name}”.", "success")
    return redirect(_view_url(view, project), 303)


def _view_url(view: SavedView, project=None) -> str:
    if project is None and view.project_id:
        project = Project.get_scoped(db.session, view.project_id)
    args = {k: v for k, v in view.filters.items() if v}
    if project:
        return url_for("issues.project_list", project_key=project.key, **args)
    return url_for("issues.all_issues", **args)


@bp.post("/views/<uuid:saved_view_id>/delete")
@require("work.view")
def delete_view(saved_view_id):
    view = SavedView.get_scoped(db.session, saved_view_id)
    if view is None or view.user_id != current_user.id:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    db.session.delete(view)
    cache.views_changed(current_user.id)
    db.session.commit()
    flash("View deleted.", "success")
    return redirect(url_for("issues.all_issues"), 303)


@bp.app_template_global()
def saved_view_url(view):
    return _view_url(view)
