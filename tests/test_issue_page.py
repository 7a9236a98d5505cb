"""The issue page: Markdown rendered when written, a fixed number of queries, and its cached parts
following every change while never shared across organizations or people."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from flask import template_rendered
from sqlalchemy import event, select, text, update
from wtforms import Form, SelectChoice, SelectField, SelectMultipleField

from app.core.fields import QuickSelect
from app.core.markdown import (
    MENTION_PLACEHOLDER,
    RENDERER_VERSION,
    render_for_storage,
    render_markdown,
    stored_html,
)
from app.core.tenancy import tenant_context
from app.extensions import cache as app_cache
from app.extensions import db
from app.issues import page, page_queries
from app.issues import services as issues
from app.models import Comment, Issue, IssueActivity, IssueLabel, Label, Membership, Project, User
from app.models.base import utcnow
from tests.accounts import add_member, login, post_form
from tests.factories import make_acme, make_beta, person

PAGE = "/acme/issues/WEB-1"
SAMPLES = (
    "Hi @grace and @nobody, thanks @Grace.",
    "# Title\n\n**bold** `@grace` [@grace](/x) mail grace@example.com \\@grace",
    f"[a link]({MENTION_PLACEHOLDER}grace) and {MENTION_PLACEHOLDER}grace",
    '<a href="/__mention__/grace" class="mention">@grace</a> <script>alert(1)</script>',
    "![img](https://example.com/a.png) [x](javascript:alert(1)) www.example.com setup.py",
    "| a | b |\n| :- | -: |\n| @grace | ~~x~~ |\n\n```py\n@grace\n```\n\n1. one\n2. two",
)


@pytest.fixture
def acme(db_session):
    """Acme (owner Olive, member Grace, viewer Vic), labels bug and ui, and WEB-1 with a
    description mentioning Grace, assigned to her, with both labels."""
    acme = make_acme({"grace@example.com": "member", "vic@example.com": "viewer"}, labels=("bug", "ui"))
    acme.add_issue(
        "Broken login",
        "Ask @grace",
        assignee_ids=[acme.people["grace@example.com"].id],
        label_ids=[label.id for label in acme.labels.values()],
    )
    db_session.commit()
    return acme.ref


def _user(db_session, email) -> User:
    return db_session.scalars(select(User).where(User.email == email)).one()


def _page(client, url=PAGE) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def _queries(app, client, url=PAGE) -> list[str]:
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        _page(client, url)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # The tests' own savepoints (each request runs inside the test's transaction) are not the page's.
    return [s for s in statements if "SAVEPOINT" not in s]


def _cold_queries(app, client, url) -> list[str]:
    """The queries of a view with nothing cached and the issue's reference not yet looked up."""
    with app.app_context():
        app_cache.clear()
    page._REFS.clear()
    return _queries(app, client, url)


def _grace_url(db_session) -> str:
    return f"/acme/issues?assignee={_user(db_session, 'grace@example.com').id}"


# --- Markdown stored when written ------------------------------------------------------------


@pytest.mark.parametrize("text", SAMPLES)
def test_stored_html_shows_what_rendering_shows(text):
    """HTML stored when the text was written, mentions resolved on read, is the HTML rendered now."""

    def mention_url(handle):
        return "/acme/issues?assignee=1" if handle == "grace" else None

    stored = render_for_storage(text)
    assert stored_html(text, stored, RENDERER_VERSION, mention_url) == render_markdown(text, mention_url)
    assert stored_html(text, stored, RENDERER_VERSION, None) == render_markdown(text)


def test_descriptions_and_comments_store_their_html_when_written(app, db_session, acme):
    """Creating and editing an issue, and commenting, store the rendered HTML with its version."""
    with tenant_context(acme.id):
        issue = db_session.scalars(select(Issue)).one()
        assert issue.description_html == render_for_storage("Ask @grace")
        assert issue.description_html_version == RENDERER_VERSION
        issues.update_issue(issue, _user(db_session, "owner@example.com"), description="Now **bold**")
        comment = issues.add_comment(issue, _user(db_session, "grace@example.com"), "A _reply_")
        db_session.commit()
        assert db_session.scalar(select(Issue.description_html)) == "<p>Now <strong>bold</strong></p>\n"
        stored = db_session.scalars(select(Comment).where(Comment.id == comment.id)).one()
        assert (stored.body_html, stored.body_html_version) == ("<p>A <em>reply</em></p>\n", RENDERER_VERSION)


def test_the_page_shows_the_stored_html_and_renders_older_versions_again(app, client, db_session, acme):
    """The page shows the HTML stored for the current renderer; a missing or older copy is rendered."""
    login(client, "grace@example.com")
    with tenant_context(acme.id):
        db_session.execute(update(Issue).values(description_html="<p>Stored copy</p>"))
        db_session.commit()
    assert "Stored copy" in _page(client)
    with tenant_context(acme.id):
        db_session.execute(update(Issue).values(description_html_version=RENDERER_VERSION - 1))
        db_session.commit()
    html = _page(client)
    assert "Stored copy" not in html
    assert f'<p>Ask <a href="{_grace_url(db_session)}" class="mention"' in html
    with tenant_context(acme.id):
        db_session.execute(update(Issue).values(description_html=None, description_html_version=None))
        db_session.commit()
    assert f'<p>Ask <a href="{_grace_url(db_session)}" class="mention"' in _page(client)


@pytest.mark.parametrize("multiple", [False, True])
def test_the_quick_select_writes_what_wtforms_writes(multiple):
    """The edit form's selects write the same HTML as WTForms' own widget, escaping and selection included."""
    choices = [
        SelectChoice("1", "Grace <b>\"G\"</b> & 'co'"),
        SelectChoice("a&b", None),
        SelectChoice("x", "Ex", render_kw={"disabled": True}),
        SelectChoice("3", "Three"),
    ]
    field = SelectMultipleField if multiple else SelectField

    class Stock(Form):
        f = field(choices=choices, validate_choice=False)

    class Quick(Form):
        f = field(choices=choices, validate_choice=False, widget=QuickSelect(multiple))

    data = {"f": ["1", "a&b"] if multiple else "a&b"}
    expected = str(Stock(data=data).f(class_="input", aria_invalid="true"))
    assert str(Quick(data=data).f(class_="input", aria_invalid="true")) == expected
    assert expected.count(" selected ") == (2 if multiple else 1)


# --- a fixed number of queries ---------------------------------------------------------------


def test_the_page_runs_as_many_queries_for_a_long_history_as_for_a_short_one(app, client, db_session, acme):
    """Uncached, the page runs the same queries with 40 comments, 40 changes, 3 assignees and 6
    labels as with none of them."""
    login(client, "owner@example.com")
    with tenant_context(acme.id):
        project = db_session.scalars(select(Project)).one()
        issues.create_issue(project, _user(db_session, "owner@example.com"), "Plain", "For @grace")
        db_session.commit()
    few = _cold_queries(app, client, "/acme/issues/WEB-2")
    with tenant_context(acme.id):
        owner, grace, vic = (_user(db_session, f"{n}@example.com") for n in ("owner", "grace", "vic"))
        labels = [Label(name=f"label {n}") for n in range(6)]
        db_session.add_all(labels)
        db_session.flush()
        issue = db_session.scalars(select(Issue).where(Issue.number == 2)).one()
        issues.set_assignees(issue, owner, [owner.id, grace.id, vic.id])
        issues.set_labels(issue, owner, [label.id for label in labels])
        for n in range(40):
            issues.add_comment(issue, grace if n % 2 else owner, f"Comment {n} for @grace")
            issues.update_issue(issue, owner, title=f"Title {n}", priority=n % 5)
        db_session.commit()
        assert db_session.query(IssueActivity).count() >= 80
    many = _cold_queries(app, client, "/acme/issues/WEB-2")
    assert len(many) == len(few), (few, many)


def test_after_an_edit_the_page_reads_the_issue_by_the_id_it_remembers(app, client, db_session, acme):
    """After an edit the page runs one query fewer than for a reference not yet looked up."""
    login(client, "grace@example.com")
    _warm(client)

    def edit(title):
        with tenant_context(acme.id):
            issue = db_session.scalars(select(Issue)).one()
            issues.update_issue(issue, _user(db_session, "owner@example.com"), title=title)
            db_session.commit()

    edit("Login broken on Safari")
    page._REFS.clear()
    looked_up = _queries(app, client)
    edit("Login broken on Firefox")
    remembered = _queries(app, client)
    assert len(remembered) == len(looked_up) - 1, (looked_up, remembered)
    assert "Login broken on Firefox" in _page(client)


def test_after_an_edit_the_page_runs_one_query(app, client, db_session, acme):
    """After an edit the page reads the issue with its people, its comments and its history in
    one query."""
    login(client, "grace@example.com")
    _warm(client)
    with tenant_context(acme.id):
        issue = db_session.scalars(select(Issue)).one()
        grace = _user(db_session, "grace@example.com")  # her own changes leave her unread count as it was
        issues.add_comment(issue, grace, "Seen on Safari")
        issues.update_issue(issue, grace, title="Login broken on Safari")
        db_session.commit()
    statements = _queries(app, client)
    assert len(statements) == 1, statements
    assert statements[0].upper().count("UNION ALL") == 2, statements
    html = _page(client)
    assert "Seen on Safari" in html and "changed title" in html


def test_comments_and_changes_show_in_the_order_they_were_made(app, client, db_session, acme):
    """The history interleaves comments and changes by time, a comment first when both were made
    at the same instant."""
    login(client, "grace@example.com")
    with tenant_context(acme.id):
        issue = db_session.scalars(select(Issue)).one()
        owner = _user(db_session, "owner@example.com")
        first = issues.add_comment(issue, owner, "First comment")
        issues.update_issue(issue, owner, title="Renamed")
        second = issues.add_comment(issue, owner, "Second comment")
        db_session.flush()
        start = utcnow()
        change = db_session.scalars(select(IssueActivity).where(IssueActivity.field == "title")).one()
        first.created_at, change.created_at = start, start + timedelta(seconds=2)
        second.created_at = start + timedelta(seconds=2)
        db_session.commit()
    html = _page(client)
    assert html.index("First comment") < html.index("Second comment") < html.index("changed title")


def test_comments_and_changes_of_a_deleted_account_show_someone(app, client, db_session, acme):
    """A comment or a change whose author's account is gone shows "Someone" in their place."""
    login(client, "grace@example.com")
    with tenant_context(acme.id):
        issue = db_session.scalars(select(Issue)).one()
        issues.add_comment(issue, _user(db_session, "owner@example.com"), "Orphaned words")
        db_session.flush()
        db_session.execute(update(Comment).values(author_id=None))
        db_session.execute(update(IssueActivity).values(actor_id=None))
        db_session.commit()
    html = _page(client)
    assert "<strong>Someone</strong>" in html and "Orphaned words" in html
    assert re.search(r'<li class="timeline__event muted">\s*Someone\s', html)


def test_a_reference_taken_by_another_issue_shows_that_issue(app, client, db_session, acme):
    """When a remembered issue's project changes key and a new project takes the old key, the old
    address shows the new project's issue."""
    login(client, "grace@example.com")
    _warm(client)
    with tenant_context(acme.id):
        db_session.scalars(select(Project)).one().key = "SHOP"
        db_session.commit()
        project = Project(key="WEB", name="Website again")
        db_session.add(project)
        db_session.flush()
        issues.create_issue(project, _user(db_session, "owner@example.com"), "Checkout is slow", "")
        db_session.commit()
    html = _page(client)
    assert "Checkout is slow" in html and "Broken login" not in html
    assert "Broken login" in _page(client, "/acme/issues/SHOP-1")


@pytest.mark.parametrize(
    ("email", "parts"),
    [
        # Someone who may edit: the details once, with a form per field, and the edit form.
        ("grace@example.com", ("_edit_form", "_issue_details", "_issue_main")),
        # A reader: the details once, values only.
        ("vic@example.com", ("_issue_details", "_issue_main")),
    ],
    ids=["editor", "reader"],
)
def test_after_an_edit_only_the_issue_and_the_edit_form_are_rendered(
    app, client, db_session, acme, email, parts
):
    """A page after an edit fills the person's cached page frame: the layout around the issue is
    not rendered again, and the details only once, as the person sees them."""
    login(client, email)
    _warm(client)
    with tenant_context(acme.id):
        issue = db_session.scalars(select(Issue)).one()
        issues.update_issue(issue, _user(db_session, "owner@example.com"), title="Login broken on Safari")
        db_session.commit()
    rendered = []

    def record(_app, template, context, **_extra):
        rendered.append(template.name)

    template_rendered.connect(record, app)
    try:
        html = _page(client)
    finally:
        template_rendered.disconnect(record, app)
    assert sorted(rendered) == [f"issues/{name}.html" for name in parts]
    assert "<title>WEB-1 Login broken on Safari" in html and "changed title" in html
    if "_edit_form" in parts:
        assert 'name="title" required type="text" value="Login broken on Safari"' in html
    else:
        assert "<dt>State</dt>" in html and "/fields/" not in html


def test_text_like_a_slot_of_the_page_is_shown_as_written(app, client, db_session, acme):
    """A title that spells a slot of the page frame, or holds markup, is shown as typed, once."""
    login(client, "grace@example.com")
    _warm(client)
    title = "<b>__worklane_slot_main__</b> & __worklane_slot_title__"
    with tenant_context(acme.id):
        issue = db_session.scalars(select(Issue)).one()
        issues.update_issue(issue, _user(db_session, "owner@example.com"), title=title)
        db_session.commit()
    html = _page(client)
    shown = "&lt;b&gt;__worklane_slot_main__&lt;/b&gt; &amp; __worklane_slot_title__"
    assert f"<title>WEB-1 {shown} · " in html
    assert html.count("Ask <a") == 1 and "<b>" not in html


def test_a_role_change_shows_on_the_next_view(app, client, db_session, acme):
    """A member made a viewer no longer gets the edit and comment forms, from the next view on."""
    login(client, "grace@example.com")
    assert "Edit issue" in _warm(client)
    grace = _user(db_session, "grace@example.com")
    with tenant_context(acme.id):
        db_session.scalars(select(Membership).where(Membership.user_id == grace.id)).one().role = "viewer"
        db_session.commit()
    html = _page(client)
    assert "Edit issue" not in html and f'action="{PAGE}/comments"' not in html and "Ask" in html


def test_a_warm_page_runs_no_query(app, client, db_session, acme):
    """Once cached, the page is served without a single database query."""
    login(client, "grace@example.com")
    _page(client)
    assert _queries(app, client) == []
    assert "Ask" in _page(client)


def test_another_person_gets_the_shared_parts_from_the_cache(app, client, db_session, acme):
    """A second member's first view renders only their own parts: the issue's rows are not read."""
    login(client, "grace@example.com")
    _page(client)
    olive = app.test_client()
    login(olive, "owner@example.com")
    statements = _queries(app, olive)
    assert not [s for s in statements if "FROM comments" in s or "FROM issue_activities" in s]
    assert "Ask" in _page(olive)


# --- every change shows on the next view -----------------------------------------------------


def _warm(client, url=PAGE) -> str:
    _page(client, url)
    return _page(client, url)


def test_an_edit_shows_on_the_next_view(app, client, db_session, acme):
    """Editing the title shows the new title, and the change in the history, at once."""
    login(client, "owner@example.com")
    _warm(client)
    saved = post_form(client, PAGE, f"{PAGE}/edit", title="Login broken on Safari")
    assert saved.status_code == 303
    _page(client)  # the flash
    html = _page(client)
    assert "Login broken on Safari" in html and "changed title" in html


def test_a_comment_shows_on_the_next_view(app, client, db_session, acme):
    """A comment posted by someone else shows on a viewer's warm page."""
    login(client, "vic@example.com")
    _warm(client)
    grace = app.test_client()
    login(grace, "grace@example.com")
    assert post_form(grace, PAGE, f"{PAGE}/comments", body="Fixed in **main**").status_code == 303
    assert "Fixed in <strong>main</strong>" in _page(client)


def test_a_change_made_outside_the_pages_shows_on_the_next_view(app, client, db_session, acme):
    """A history entry or comment written directly (a job, an import) shows without an issue edit."""
    login(client, "vic@example.com")
    _warm(client)
    with tenant_context(acme.id):
        issue_id = db_session.scalar(select(Issue.id))
        db_session.add(IssueActivity(issue_id=issue_id, field="estimate", old_value=None, new_value="8"))
        db_session.commit()
    assert "changed estimate" in _page(client)
    with tenant_context(acme.id):
        db_session.add(Comment(issue_id=issue_id, body="Imported remark"))
        db_session.commit()
    assert "Imported remark" in _page(client)


def test_assignee_and_label_changes_show_on_the_next_view(app, client, db_session, acme):
    """Changing the assignees and labels, and renaming a label, show at once."""
    login(client, "vic@example.com")
    assert '<span class="chip label--gray">bug</span>' in _warm(client)
    with tenant_context(acme.id):
        issue = db_session.scalars(select(Issue)).one()
        owner = _user(db_session, "owner@example.com")
        issues.set_assignees(issue, owner, [owner.id])
        db_session.commit()
    html = _page(client)
    assert "Olive Owner</dd>" in html and "Grace Hopper</dd>" not in html
    with tenant_context(acme.id):
        db_session.scalars(select(Label).where(Label.name == "bug")).one().name = "defect"
        db_session.commit()
    assert '<span class="chip label--gray">defect</span>' in _page(client)


def test_a_label_the_cached_names_do_not_know_yet_is_shown(app, client, db_session, acme):
    """A label written straight to the database (no version moved) and then put on the issue is
    shown by name: the page reads the labels its cached names lack."""
    login(client, "vic@example.com")
    _warm(client)
    sqlite = db_session.get_bind().dialect.name == "sqlite"
    label_id = uuid.uuid4()
    with tenant_context(acme.id):
        db_session.execute(
            text(
                "INSERT INTO labels (tenant_id, id, name, folded_name, color, created_at)"
                " VALUES (:t, :i, 'urgent', 'urgent', '#dc2626', :c)"
            ),
            {
                "t": acme.id.hex if sqlite else acme.id,
                "i": label_id.hex if sqlite else label_id,
                "c": utcnow(),
            },
        )
        issue = db_session.scalars(select(Issue)).one()
        db_session.add(IssueLabel(issue_id=issue.id, label_id=label_id))
        db_session.commit()
    html = _page(client)
    assert (
        '<span class="chip label--red">urgent</span>' in html
        and '<span class="chip label--gray">bug</span>' in html
    )


def test_member_changes_show_on_the_next_view(app, client, db_session, acme):
    """A renamed member's new name, and a mention of a member's new handle, show at once."""
    login(client, "vic@example.com")
    assert "Grace Hopper" in _warm(client)
    grace = _user(db_session, "grace@example.com")
    grace.name = "Grace B. Hopper"
    db_session.commit()
    html = _page(client)
    assert "Grace B. Hopper" in html and "Grace Hopper" not in html
    _user(db_session, "grace@example.com").email = "hopper@example.com"
    db_session.commit()
    assert "<p>Ask @grace</p>" in _page(client)


def test_someone_assigned_who_left_the_organization_is_still_shown(app, client, db_session, acme):
    """An assignee removed from the organization stays named on the page (and in the edit form's values)."""
    login(client, "vic@example.com")
    assert "Grace Hopper</dd>" in _warm(client)
    with tenant_context(acme.id):
        grace = _user(db_session, "grace@example.com")
        db_session.delete(db_session.scalars(select(Membership).where(Membership.user_id == grace.id)).one())
        db_session.commit()
    html = _page(client)
    assert "Grace Hopper</dd>" in html


def test_a_new_member_becomes_a_mention_link(app, client, db_session, acme):
    """A handle that named nobody links to the member who joins with it."""
    with tenant_context(acme.id):
        issues.add_comment(
            db_session.scalars(select(Issue)).one(), _user(db_session, "owner@example.com"), "@ada?"
        )
        db_session.commit()
    login(client, "vic@example.com")
    assert "<p>@ada?</p>" in _warm(client)
    ada = person("ada@example.com")
    add_member(acme, ada, "member")
    db_session.commit()
    assert f'<a href="/acme/issues?assignee={ada.id}" class="mention"' in _page(client)


def test_watching_shows_on_the_next_view_for_that_person_only(app, client, db_session, acme):
    """Watching and unwatching change the button for the person who did it, and for no one else."""
    login(client, "vic@example.com")
    assert ">Watch</button>" in _warm(client)
    grace = app.test_client()
    login(grace, "grace@example.com")
    assert ">Stop watching</button>" in _warm(grace)  # assigned: watching
    assert post_form(client, PAGE, f"{PAGE}/watch", watch="1").status_code == 303
    assert ">Stop watching</button>" in _page(client)
    assert post_form(grace, PAGE, f"{PAGE}/watch", watch="0").status_code == 303
    assert ">Watch</button>" in _page(grace)
    assert ">Stop watching</button>" in _page(client)


def test_a_project_rename_shows_on_the_next_view(app, client, db_session, acme):
    """The breadcrumb shows the project's new name at once."""
    login(client, "vic@example.com")
    _warm(client)
    with tenant_context(acme.id):
        db_session.scalars(select(Project)).one().name = "Storefront"
        db_session.commit()
    assert ">Storefront</a> / WEB-1</nav>" in _page(client)


def test_a_deleted_issue_or_a_changed_project_key_is_not_served_from_the_cache(app, client, db_session, acme):
    """A warm page's reference stops naming its issue once the issue is gone or its project's key
    changed: the old address answers 404 and the new one the issue."""
    login(client, "vic@example.com")
    _warm(client)
    with tenant_context(acme.id):
        db_session.scalars(select(Project)).one().key = "SHOP"
        db_session.commit()
    assert client.get(PAGE).status_code == 404
    assert "Broken login" in _warm(client, "/acme/issues/SHOP-1")
    with tenant_context(acme.id):
        db_session.delete(db_session.scalars(select(Issue)).one())
        db_session.commit()
    assert client.get("/acme/issues/SHOP-1").status_code == 404


def test_the_etag_follows_what_the_page_shows(app, client, db_session, acme):
    """A 304 is answered until anything on the page changes, a watch or a member's name included."""
    login(client, "vic@example.com")
    etag = client.get(PAGE).headers["ETag"]
    assert client.get(PAGE, headers={"If-None-Match": etag}).status_code == 304
    assert post_form(client, PAGE, f"{PAGE}/watch", watch="1").status_code == 303
    assert client.get(PAGE, headers={"If-None-Match": etag}).status_code == 200
    etag = client.get(PAGE).headers["ETag"]
    _user(db_session, "grace@example.com").name = "Grace B. Hopper"
    db_session.commit()
    assert client.get(PAGE, headers={"If-None-Match": etag}).status_code == 200


# --- never shared across organizations or people ---------------------------------------------


def test_two_organizations_never_see_each_others_issue(app, client, db_session, acme):
    """WEB-1 of Acme and WEB-1 of Beta, both cached, each show their own organization's issue."""
    beta = make_beta(projects=("WEB",))
    beta.add_issue("Beta's own issue", "Secret of beta")
    beta_id = beta.id
    add_member(beta.org, _user(db_session, "grace@example.com"), "member")
    db_session.commit()
    login(client, "grace@example.com")
    for _ in range(2):
        acme_html, beta_html = _page(client), _page(client, "/beta/issues/WEB-1")
        assert "Broken login" in acme_html and "Secret of beta" not in acme_html
        assert "Beta&#39;s own issue" in beta_html and "<p>Ask " not in beta_html
    with app.app_context():
        keys = [key.decode() for key in app_cache.cache._read_client.keys("*issue-parts*")]
    assert keys and all(f":t:{acme.id}:" in key or f":t:{beta_id}:" in key for key in keys)


def test_the_page_reads_nothing_of_another_organizations_issue(app, db_session, acme):
    """The page's queries, built once, find an issue and its comments and history only in the
    current organization."""
    with tenant_context(acme.id):
        issue = db_session.scalars(select(Issue)).one()
        issues.add_comment(issue, _user(db_session, "grace@example.com"), "Acme only")
        db_session.commit()
        issue_id = issue.id
        found = page_queries.issue_page(issue_id)
        assert found is not None and found[0].ref == "WEB-1"
        timeline = found[-1]
        assert [(entry.kind, entry.name) for entry in timeline][-1] == ("comment", "Grace Hopper")
        assert any(entry.kind == "event" for entry in timeline)
    beta = make_beta(projects=("WEB",))
    db_session.commit()
    with tenant_context(beta.id):
        assert page_queries.issue_page_rows(issue_id) == []
        assert page_queries.issue_page(issue_id) is None


def test_people_see_their_own_controls_from_the_shared_parts(app, client, db_session, acme):
    """A viewer and a member share the issue's cached parts, not their forms or permissions."""
    login(client, "grace@example.com")
    member_html = _warm(client)
    vic = app.test_client()
    login(vic, "vic@example.com")
    viewer_html = _warm(vic)
    assert "Edit issue" in member_html and f'action="{PAGE}/comments"' in member_html
    assert "Edit issue" not in viewer_html and f'action="{PAGE}/comments"' not in viewer_html
    assert "Ask" in viewer_html and "Ask" in member_html
    token = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
    assert token.search(member_html).group(1) != token.search(viewer_html).group(1)
    assert "Edit issue" in _page(client) and "Edit issue" not in _page(vic)


def test_rows_without_current_html_are_stored_by_the_command(app, db_session, acme):
    """`flask markdown render` stores the HTML of rows written before it was stored, or by an
    older renderer, and leaves current rows alone."""
    with tenant_context(acme.id):
        issue = db_session.scalars(select(Issue)).one()
        issues.add_comment(issue, _user(db_session, "grace@example.com"), "Old **comment**")
        issues.add_comment(issue, _user(db_session, "grace@example.com"), "Current")
        db_session.flush()
        db_session.execute(update(Issue).values(description_html=None, description_html_version=None))
        db_session.execute(
            update(Comment).where(Comment.body != "Current").values(body_html="<p>x</p>", body_html_version=0)
        )
        db_session.commit()
    result = app.test_cli_runner().invoke(args=["markdown", "render"])
    assert result.exit_code == 0, result.output
    assert "stored the HTML of 2 descriptions and comments" in result.output
    db_session.expire_all()
    with tenant_context(acme.id):
        assert db_session.execute(select(Issue.description_html, Issue.description_html_version)).one() == (
            render_for_storage("Ask @grace"),
            RENDERER_VERSION,
        )
        stored = dict(db_session.execute(select(Comment.body, Comment.body_html)).all())
        assert stored == {
            "Old **comment**": "<p>Old <strong>comment</strong></p>\n",
            "Current": "<p>Current</p>\n",
        }


def test_a_restored_export_stores_the_html_of_its_text(app, db_session):
    """Restoring an export stores the rendered HTML of its descriptions and comments."""
    from app.exports.restore import import_export
    from tests.accounts import make_user
    from tests.test_restore import ISSUE, PROJECT, STATES, _export

    make_user("owner@example.com")
    db_session.commit()
    at = "2026-01-01T10:00:00+00:00"
    comment = {"issue": "WEB-1", "author": "owner@example.com", "body": "A **note**", "created_at": at}
    source = _export(
        projects=[PROJECT],
        workflow_states=STATES,
        issues=[{**ISSUE, "description": "Some _text_"}],
        comments=[{**comment, "updated_at": at}],
    )
    report = import_export(source, "Copy", "owner@example.com")
    with tenant_context(report.organization_id):
        issue = db_session.execute(select(Issue.description_html, Issue.description_html_version)).one()
        assert tuple(issue) == ("<p>Some <em>text</em></p>\n", RENDERER_VERSION)
        stored = db_session.execute(select(Comment.body_html, Comment.body_html_version)).one()
        assert tuple(stored) == ("<p>A <strong>note</strong></p>\n", RENDERER_VERSION)


def test_a_kept_page_holds_its_frame_as_bytes(app, client, db_session, acme):
    """The person's kept page holds its frame as UTF-8 bytes, so a warm page reads it without decoding it."""
    login(client, "vic@example.com")
    assert client.get(PAGE).status_code == 200
    with app.app_context():
        keys = app_cache.cache._read_client.keys("*:page:issue:*")
        stored = [app_cache.cache.get(key.decode().removeprefix(app_cache.cache.key_prefix)) for key in keys]
    assert len(stored) == 1 and isinstance(stored[0][3][1], bytes)
    assert "__worklane_slot_main__" in stored[0][3][1].decode()
    assert client.get(PAGE).status_code == 200
