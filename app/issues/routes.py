"""Issue pages: lists, the board, an issue with its comments and history, my work, search."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import func, select, update
from wtforms import SelectChoice

from app import cache
from app.auth.identity import signed_in
from app.extensions import cache as app_cache
from app.extensions import db
from app.issues import bp
from app.issues import services as issues
from app.issues.forms import CommentForm, IssueForm, MoveForm
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
from app.names import invisible_text_problem
from app.orgs.context import current_access
from app.orgs.forms import ConfirmForm
from app.permissions import can, require
from app.projects.routes import project_or_404

REF_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9]{1,9})-(\d{1,9})$")
BOARD_PAGE = 25


def issue_or_404(issue_ref: str) -> Issue:
    match = REF_PATTERN.match(issue_ref)
    if not match:
        abort(404)
    issue = db.session.scalar(
        select(Issue)
        .join(Project)
        .where(Project.key == match.group(1).upper(), Issue.number == int(match.group(2)))
    )
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


def _issue_page(issue: Issue, form=None, comment_form=None, status=200):
    if form is None:
        form = IssueForm(
            obj=issue,
            assignees=[str(u.id) for u in issue.assignees],
            labels=[str(label.id) for label in issue.labels],
            priority=str(issue.priority),
        )
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
        move_form=MoveForm(state=issue.state),
        confirm_form=ConfirmForm(),
        state_labels=STATE_LABELS,
        priority_labels=PRIORITY_LABELS,
        mention_url=_mention_url(members),
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
    issue = issue_or_404(issue_ref)
    form = IssueForm()
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            issues.update_issue(
                issue,
                current_user,
                title=form.title.data,
                description=form.description.data or "",
                state=form.state.data,
                priority=int(form.priority.data),
                due_date=form.due_date.data,
                estimate=form.estimate.data,
            )
            issues.set_assignees(issue, current_user, form.assignees.data)
            issues.set_labels(issue, current_user, form.labels.data)
        except issues.IssueError as exc:
            db.session.rollback()
            issue = issue_or_404(issue_ref)
            form.assignees.errors.append(str(exc))
            return _issue_page(issue, form=form, status=422)
        cache.issues_changed()
        db.session.commit()
        flash("Saved.", "success")
        return redirect(url_for("issues.show", issue_ref=issue_ref), 303)
    return _issue_page(issue, form=form, status=422)


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
    """Move an issue to another board column: a plain form, or htmx swapping the board."""
    issue = issue_or_404(issue_ref)
    form = MoveForm()
    if not form.validate_on_submit():
        abort(400, "Choose one of the listed states.")
    try:
        issues.move_issue(issue, current_user, form.state.data, request.form.get("before") or None)
    except issues.IssueError as exc:
        abort(422, str(exc))
    project_key = issue.project.key
    cache.issues_changed()
    db.session.commit()
    if request.headers.get("HX-Request"):
        return _board_response(project_or_404(project_key), partial=True)
    target = request.form.get("next")
    if target == "board":
        return redirect(url_for("issues.board", project_key=project_key), 303)
    return redirect(url_for("issues.show", issue_ref=issue_ref), 303)


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


def _board_response(project: Project, partial: bool = False):
    columns_html = Markup(_board_columns_html(project, can("work.edit")))
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
        from app.search import search_issues

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
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = request.form.get("name", "").strip()[:80]
    if not name:
        abort(400, "Name the view.")
    if problem := invisible_text_problem(name):
        abort(400, problem)
    filters = IssueFilters.from_args(request.form)
    project = project_or_404(request.form["project_key"]) if request.form.get("project_key") else None
    existing = db.session.scalar(
        select(SavedView).where(SavedView.user_id == current_user.id, SavedView.name == name)
    )
    view = existing or SavedView(user_id=current_user.id, name=name)
    view.filters = filters.as_dict()
    view.project_id = project.id if project else None
    if existing is None:
        db.session.add(view)
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
