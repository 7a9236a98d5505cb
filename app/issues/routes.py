"""Issue pages: an issue with its comments and history (edit, comment, watch, move), my work,
search. The lists, the board, saved views and the inbox have their own modules."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from flask import abort, flash, g, has_request_context, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from wtforms import SelectChoice

from app.auth.identity import signed_in_id
from app.core import edits, page_cache
from app.core.database import commit_now
from app.core.permissions import require
from app.extensions import db
from app.issues import bp, edit_form, page, page_forms, queries
from app.issues import services as issues
from app.issues.board import board_response
from app.issues.forms import CommentForm, IssueEditForm, IssueForm, MoveForm
from app.issues.queries import issue_or_404
from app.labels import services as label_services
from app.models.base import utcnow
from app.models.work import PRIORITY_LABELS
from app.orgs.forms import ConfirmForm
from app.plans.quotas import QuotaExceeded
from app.projects.services import project_or_404
from app.projects.workflow import default_state_key, names_by_project, state_choices

#: Stands in for an issue's reference in the address of its page (``issue_url``).
_REF_SLOT = "__issue_ref__"


@bp.app_template_global()
def issue_url(ref: str) -> str:
    """``url_for("issues.show", issue_ref=ref)`` for the many issues of a list, a board or a page
    of search results: the organization's address of an issue page is built once per request
    (``url_for`` costs about as much as the rest of a row) and each reference put in."""
    if not has_request_context():  # a job may render for one organization, then another
        return url_for("issues.show", issue_ref=ref)
    request_globals = g._get_current_object()
    template = request_globals.get("issue_url_template")
    if template is None:
        template = request_globals.issue_url_template = url_for("issues.show", issue_ref=_REF_SLOT)
    return template.replace(_REF_SLOT, quote(ref, safe=""))


def _fill_choices(form: IssueForm, project_key: str) -> None:
    page_forms.fill_choices(form, *queries.filter_choices(), state_choices(project_key))


@bp.route("/projects/<project_key>/issues/new", methods=["GET", "POST"])
@require("work.edit")
def new_issue(project_key):
    project = project_or_404(project_key)
    # A form sent without a state (none chosen) starts the issue in the project's default.
    form = IssueForm(data={"state": default_state_key(project)})
    _fill_choices(form, project.key)
    if form.validate_on_submit():
        try:
            page_forms.add_new_label(form)
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
        except label_services.LabelError as exc:
            db.session.rollback()
            form.new_label.errors.append(str(exc))
        except issues.IssueError as exc:
            db.session.rollback()
            form.assignees.errors.append(str(exc))
        except QuotaExceeded as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            ref = issue.ref
            flash(f"Created {ref}.", "success")
            return redirect(url_for("issues.show", issue_ref=ref), 303)
    status = 422 if request.method == "POST" else 200
    return render_template("issues/new.html", form=form, project=project), status


@bp.get("/issues/<issue_ref>")
@require("work.view")
def show(issue_ref):
    """The issue's page; served from the cache, with an ETag, until anything on it changes."""
    return page.page_response(issue_ref, page_forms.show, page_forms.own_html)


@bp.post("/issues/<issue_ref>/edit")
@require("work.edit")
def edit(issue_ref):
    """Save the fields the person changed; 409 with their input kept if another change collides."""
    issue = issue_or_404(issue_ref)
    form = IssueEditForm(data={"state": issue.state})  # a form sent without a state keeps it
    _fill_choices(form, issue.project.key)
    if not form.validate_on_submit():
        return page_forms.issue_page(issue_ref, form=form, status=422)
    loaded = edits.decode(form.loaded.data, edit_form.EDIT_FIELDS)
    try:
        page_forms.add_new_label(form)
    except label_services.LabelError as exc:
        db.session.rollback()
        form.new_label.errors.append(str(exc))
        return page_forms.issue_page(issue_ref, form=form, status=422)
    submitted = edit_form.submitted_values(form)
    try:
        edit_form.save_edit(issue, current_user, loaded, submitted)
    except edits.EditConflict as conflict:
        db.session.rollback()
        issue = issue_or_404(issue_ref)
        current = edit_form.edit_values(issue)
        typed_label = form.new_label.data
        form = page_forms.whole_form(edits.after_conflict(current, loaded, submitted), current)
        form.new_label.data = typed_label  # its label went with the refused save: type, save again
        return page_forms.issue_page(issue_ref, form=form, status=409, conflict=conflict)
    except issues.IssueError as exc:
        db.session.rollback()
        issue = issue_or_404(issue_ref)
        form.assignees.errors.append(str(exc))
        return page_forms.issue_page(issue_ref, form=form, status=422)
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
    return page_forms.issue_page(issue_ref, comment_form=form, status=422)


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
    """Move an issue to another board column, or within its column (above ``before``, below
    ``after``, or one ``step`` up or down): a plain form, or htmx swapping the board.

    The form says which column the card was in when the page was loaded; a card someone
    else moved since is not moved again (409, with the board as it is now).
    """
    issue = issue_or_404(issue_ref)
    form = MoveForm()
    states = state_choices(issue.project.key)
    form.state.choices = [SelectChoice(key, name) for key, name in states]
    if not form.validate_on_submit():
        abort(400, "Choose one of the listed states.")
    if form.from_state.data not in dict(states):
        abort(400, edits.STALE_FORM)
    project_key = issue.project.key
    place = {"before_id": request.form.get("before") or None, "after_id": request.form.get("after") or None}
    try:
        if request.form.get("step"):  # a card's own Up or Down button
            issues.step_issue(issue, current_user, request.form["step"], form.from_state.data)
        else:
            issues.move_issue(issue, current_user, form.state.data, from_state=form.from_state.data, **place)
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
    return page_forms.issue_page(issue_ref, status=409, notice=notice)


@bp.get("/my-work")
@require("work.view")
def my_work():
    assigned = queries.open_assigned_to(signed_in_id())
    soon = utcnow().date() + timedelta(days=7)
    due = [i for i in assigned if i.due_date and i.due_date <= soon]
    watched_recent = queries.watched_recently_updated(signed_in_id())
    return render_template(
        "issues/my_work.html",
        assigned=assigned,
        due=sorted(due, key=lambda i: i.due_date),
        recent=watched_recent,
        state_labels=names_by_project(),
        priority_labels=PRIORITY_LABELS,
    )


def _state_name(names: dict, hit) -> str:
    return names.get(hit.ref.rsplit("-", 1)[0], {}).get(hit.state, hit.state)


#: Results the search page shows (the total says how many matched).
SEARCH_RESULTS = 30


@bp.get("/search")
@require("work.view")
def search():
    """The organization's issues matching the query: the best ``SEARCH_RESULTS``, grouped by
    project in the order of each project's best match."""
    from app.issues import search as issue_search

    query = request.args.get("q", "").strip()[:200]
    if not query:
        return render_template(
            "issues/search.html", query=query, hits=[], total=0, state_labels=names_by_project()
        )

    def shown():
        page = issue_search.cached_search_issues(query, limit=SEARCH_RESULTS)
        # Each result's state by name too: a renamed state is a change of what the page shows.
        names = names_by_project()
        return page.total, [
            (hit.ref, hit.title, hit.state, _state_name(names, hit), str(hit.snippet)) for hit in page.hits
        ]

    def render(results):
        total, rows = results
        hits = [issue_search.ShownHit(ref, title, state, Markup(html)) for ref, title, state, _, html in rows]
        return render_template(
            "issues/search.html",
            query=query,
            hits=hits,
            total=total,
            groups=issue_search.by_project(hits),
            state_labels=names_by_project(),
        )

    # The results are shared by the organization's members; the whole page is the person's own.
    # After an edit that changed none of the results shown, the person's page is kept as it was.
    return page_cache.cached_page(
        "search", render, *issue_search.SEARCHED_TOPICS, timeout=issue_search.CACHE_SECONDS, shown=shown
    )
