"""Projects and issues: numbering, history, assignees and labels, comments, notifications, lists."""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from sqlalchemy import event, select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.issues import services as issues
from app.models import Issue, IssueActivity, Label, Notification, Project
from app.models.workflow import DEFAULT_STATES
from tests.accounts import login, make_org, make_user, post_form
from tests.factories import make_acme
from tests.support.statements import Statements


@pytest.fixture
def acme(db_session):
    """Acme with an owner, a member (grace@) and a viewer, a WEB project and two labels."""
    acme = make_acme({"grace@example.com": "member", "vic@example.com": "viewer"}, labels=("bug", "ui"))
    db_session.commit()
    return acme.ref


def _issue(db_session, org, title="Broken login", **fields) -> Issue:
    with tenant_context(org.id):
        project = db_session.scalars(select(Project)).first()
        db_session.scalars(select(db.text("1"))).first() and None
        user = _user(db_session, "owner@example.com")
        issue = issues.create_issue(project, user, title, **fields)
        db_session.commit()
        issue.ref  # noqa: B018
        return issue


def _user(db_session, email):
    from app.models import User

    return db_session.scalars(select(User).where(User.email == email)).one()


def _new_issue_form(client, **data):
    defaults = {"title": "A title", "description": "", "state": "todo", "priority": "0"}
    return post_form(client, "/acme/projects/WEB/issues/new", **{**defaults, **data})


def test_creating_issues_numbers_them_per_project(client, db_session, acme):
    """Issues get WEB-1, WEB-2 … in their project."""
    login(client, "owner@example.com")
    first = _new_issue_form(client, title="First")
    second = _new_issue_form(client, title="Second")
    assert first.headers["Location"] == "/acme/issues/WEB-1"
    assert second.headers["Location"] == "/acme/issues/WEB-2"
    page = client.get("/acme/issues/WEB-2")
    assert page.status_code == 200 and "Second" in page.get_data(as_text=True)


@pytest.mark.postgres_only
def test_parallel_creation_never_collides_or_skips(app, committed_db):
    """Twelve threads creating issues at once get the numbers 1 to 12, each exactly once."""
    with app.app_context():
        acme = make_acme()
        project_id, owner_id, org_id = acme.projects["WEB"].id, acme.owner.id, acme.id
        db.session.commit()
    errors = []
    barrier = threading.Barrier(12)

    def create(n):
        try:
            with app.app_context(), tenant_context(org_id):
                from app.models import User

                project = Project.get_scoped(db.session, project_id)
                user = db.session.get(User, owner_id)
                barrier.wait(10)
                issues.create_issue(project, user, f"Parallel {n}")
                db.session.commit()
        except Exception as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with app.app_context(), tenant_context(org_id):
        numbers = sorted(db.session.scalars(select(Issue.number)))
    assert numbers == list(range(1, 13))


def test_bad_issue_input_is_a_422_that_keeps_the_input(client, db_session, acme):
    """A missing title or a bad estimate is refused with messages; the typed text stays."""
    login(client, "owner@example.com")
    response = _new_issue_form(client, title="", description="Kept text", estimate="-3")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Give the issue a title." in html and "Between 0 and 1000." in html and "Kept text" in html


def test_assignees_and_labels_from_another_tenant_are_refused(client, db_session, acme):
    """Naming another organization's user or label in the form is a 422 and creates nothing."""
    stranger = make_user("stranger@example.com")
    other = make_org(stranger, "Other", "other")
    with tenant_context(other.id):
        foreign_label = Label(name="theirs")
        db_session.add(foreign_label)
        db_session.flush()
        foreign_label_id = foreign_label.id
    stranger_id = stranger.id
    db_session.commit()
    login(client, "owner@example.com")
    for field, value in (
        ("assignees", str(stranger_id)),
        ("labels", str(foreign_label_id)),
        ("labels", "nonsense"),
    ):
        response = _new_issue_form(client, title="Sneaky", **{field: value})
        assert response.status_code == 422, field
    with tenant_context(acme.id):
        assert db_session.scalars(select(Issue)).all() == []


def test_edits_are_recorded_in_the_history(client, db_session, acme):
    """Every changed field is recorded with its old and new value, and shown on the page."""
    login(client, "owner@example.com")
    _new_issue_form(client, title="Old title")
    grace = _user(db_session, "grace@example.com")
    with tenant_context(acme.id):
        bug = db_session.scalars(select(Label).where(Label.name == "bug")).one()
        bug_id, grace_id = bug.id, grace.id
    response = post_form(
        client,
        "/acme/issues/WEB-1",
        "/acme/issues/WEB-1/edit",
        title="New title",
        description="",
        state="in_progress",
        priority="4",
        assignees=str(grace_id),
        labels=str(bug_id),
    )
    assert response.status_code == 303
    with tenant_context(acme.id):
        changes = {a.field: (a.old_value, a.new_value) for a in db_session.scalars(select(IssueActivity))}
    assert changes["title"] == ("Old title", "New title")
    assert changes["state"] == ("Todo", "In progress")
    assert changes["priority"] == ("No priority", "Urgent")
    assert changes["assignees"] == (None, "Grace Hopper")
    assert changes["labels"] == (None, "bug")
    html = client.get("/acme/issues/WEB-1").get_data(as_text=True)
    assert "changed state from <strong>Todo</strong> to <strong>In progress</strong>" in html


def test_notifications_for_assignment_mention_and_comment(app, client, db_session, acme):
    """Assigning, mentioning and commenting on a watched issue notify the right people, not the actor."""
    login(client, "owner@example.com")
    grace_id = _user(db_session, "grace@example.com").id
    _new_issue_form(client, title="Needs review", assignees=str(grace_id))
    post_form(client, "/acme/issues/WEB-1", "/acme/issues/WEB-1/comments", body="Hello @vic, look **here**")
    with tenant_context(acme.id):
        got = {(n.user_id, n.kind) for n in db_session.scalars(select(Notification))}
    vic_id = _user(db_session, "vic@example.com").id
    owner_id = _user(db_session, "owner@example.com").id
    assert (grace_id, "assigned") in got
    assert (vic_id, "mentioned") in got
    assert (grace_id, "commented") in got  # grace watches what she is assigned to
    assert all(user_id != owner_id for user_id, _ in got)

    grace = app.test_client()
    login(grace, "grace@example.com")
    html = grace.get("/acme/").get_data(as_text=True)
    assert re.search(r'class="count">2<', html)
    inbox = grace.get("/acme/notifications").get_data(as_text=True)
    assert "assigned you to" in inbox and "commented on" in inbox
    post_form(grace, "/acme/notifications", "/acme/notifications/read-all")
    assert 'class="count"' not in grace.get("/acme/").get_data(as_text=True)


def test_mentions_render_as_links_and_markdown_is_sanitized(client, db_session, acme):
    """Descriptions render Markdown, link known mentions, and drop anything executable."""
    login(client, "owner@example.com")
    _new_issue_form(client, title="Rendered", description="**bold** @grace <script>alert(1)</script>")
    html = client.get("/acme/issues/WEB-1").get_data(as_text=True)
    assert "<strong>bold</strong>" in html
    assert 'class="mention"' in html
    assert "<script>alert(1)</script>" not in html


def test_viewers_read_but_cannot_write(app, db_session, acme):
    """A viewer sees the list and the issue but cannot create, edit, comment or move."""
    _issue(db_session, acme)
    viewer = app.test_client()
    login(viewer, "vic@example.com")
    assert viewer.get("/acme/projects/WEB/issues").status_code == 200
    page = viewer.get("/acme/issues/WEB-1")
    assert page.status_code == 200 and "Edit issue" not in page.get_data(as_text=True)
    assert viewer.get("/acme/projects/WEB/issues/new").status_code == 403
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(
        1
    )
    for action in ("edit", "comments", "move"):
        assert viewer.post(f"/acme/issues/WEB-1/{action}", data={"csrf_token": token}).status_code == 403


def test_list_pages_with_keyset_cursors_without_gaps_or_repeats(client, db_session, acme):
    """Walking the list page by page visits every issue once, for every sort order."""
    with tenant_context(acme.id):
        project = db_session.scalars(select(Project)).one()
        owner = _user(db_session, "owner@example.com")
        for n in range(120):
            issues.create_issue(project, owner, f"Issue {n}", priority=n % 5)
        db_session.commit()
    login(client, "owner@example.com")
    for sort in ("updated", "created", "priority", "due", "number"):
        seen, url = [], f"/acme/projects/WEB/issues?sort={sort}"
        while url:
            html = client.get(url).get_data(as_text=True)
            seen += re.findall(r'class="ref" href="/acme/issues/(WEB-\d+)"', html)
            following = re.search(r'href="([^"]*after=[^"]+)"', html)
            url = following.group(1).replace("&amp;", "&") if following else None
        assert len(seen) == 120 and len(set(seen)) == 120, sort


def test_filters_narrow_the_list(client, db_session, acme):
    """State, priority, assignee, label and text filters each narrow the list."""
    grace_id = _user(db_session, "grace@example.com").id
    with tenant_context(acme.id):
        project = db_session.scalars(select(Project)).one()
        owner = _user(db_session, "owner@example.com")
        bug = db_session.scalars(select(Label).where(Label.name == "bug")).one()
        issues.create_issue(
            project,
            owner,
            "Crash on save",
            state="in_progress",
            priority=4,
            assignee_ids=[grace_id],
            label_ids=[bug.id],
        )
        issues.create_issue(project, owner, "Polish footer", state="todo", priority=1)
        db_session.commit()
        bug_id = bug.id
    login(client, "owner@example.com")

    def refs(query):
        html = client.get(f"/acme/projects/WEB/issues?{query}").get_data(as_text=True)
        return set(re.findall(r'class="ref" href="/acme/issues/(WEB-\d+)"', html))

    assert refs("") == {"WEB-1", "WEB-2"}
    assert refs("state=in_progress") == {"WEB-1"}
    assert refs("priority=1") == {"WEB-2"}
    assert refs(f"assignee={grace_id}") == {"WEB-1"}
    assert refs("assignee=none") == {"WEB-2"}
    assert refs(f"label={bug_id}") == {"WEB-1"}
    assert refs("q=footer") == {"WEB-2"}
    assert refs("q=100%25_") == set()


class QueryCounter:
    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args):
        self.count += 1


def _queries_for(app, client, url) -> int:
    with app.app_context():
        engine = db.engine
    app_cache_clear(app)
    with QueryCounter(engine) as counter:
        response = client.get(url)
    assert response.status_code == 200, url
    return counter.count


def app_cache_clear(app):
    """Nothing cached: neither in Redis nor the issue references this process remembers."""
    from app.extensions import cache
    from app.issues import page

    with app.app_context():
        cache.clear()
    page._REFS.clear()


def _add_issues(db_session, org, count, comments_on_first=0):
    with tenant_context(org.id):
        project = db_session.scalars(select(Project)).one()
        owner = _user(db_session, "owner@example.com")
        grace = _user(db_session, "grace@example.com")
        labels = db_session.scalars(select(Label)).all()
        first = None
        for _ in range(count):
            issue = issues.create_issue(
                project,
                owner,
                f"Issue {uuid.uuid4().hex[:6]}",
                assignee_ids=[grace.id],
                label_ids=[label.id for label in labels],
            )
            first = first or issue
        for n in range(comments_on_first):
            issues.add_comment(first, owner, f"Comment {n}")
        db_session.commit()


@pytest.mark.parametrize(
    "url", ["/acme/projects/WEB/issues", "/acme/projects/WEB/board", "/acme/issues/WEB-1", "/acme/my-work"]
)
def test_pages_run_a_fixed_number_of_queries(app, client, db_session, acme, url):
    """The list, board, issue and my-work pages run as many queries for 50 rows as for 5 (no N+1)."""
    _add_issues(db_session, acme, 5, comments_on_first=5)
    login(client, "owner@example.com")
    few = _queries_for(app, client, url)
    _add_issues(db_session, acme, 45)
    with tenant_context(acme.id):
        first = db_session.scalars(select(Issue).where(Issue.number == 1)).one()
        owner = _user(db_session, "owner@example.com")
        for n in range(45):
            issues.add_comment(first, owner, f"More {n}")
        db_session.commit()
    many = _queries_for(app, client, url)
    assert many == few, (url, few, many)


def test_cached_list_shows_an_edit_at_once(client, db_session, acme):
    """The cached list rows and the board show an edited title on the very next request."""
    _issue(db_session, acme, title="Before the edit")
    login(client, "owner@example.com")
    assert "Before the edit" in client.get("/acme/projects/WEB/issues").get_data(as_text=True)
    assert "Before the edit" in client.get("/acme/projects/WEB/issues").get_data(as_text=True)  # a cache hit
    post_form(
        client,
        "/acme/issues/WEB-1",
        "/acme/issues/WEB-1/edit",
        title="After the edit",
        description="",
        state="todo",
        priority="0",
    )
    for url in ("/acme/projects/WEB/issues", "/acme/projects/WEB/board", "/acme/issues"):
        html = client.get(url).get_data(as_text=True)
        assert "After the edit" in html and "Before the edit" not in html, url
    title = client.get("/acme/issues/WEB-1").get_data(as_text=True).split("</h1>")[0]
    assert "After the edit" in title  # (the history below still quotes the old title)


def test_issue_page_answers_304_until_it_changes(client, db_session, acme):
    """The issue page carries an ETag; a matching If-None-Match gets 304 until the issue changes."""
    _issue(db_session, acme)
    login(client, "owner@example.com")
    first = client.get("/acme/issues/WEB-1")
    etag = first.headers["ETag"]
    assert client.get("/acme/issues/WEB-1", headers={"If-None-Match": etag}).status_code == 304
    post_form(client, "/acme/issues/WEB-1", "/acme/issues/WEB-1/comments", body="A change")
    assert client.get("/acme/issues/WEB-1", headers={"If-None-Match": etag}).status_code == 200


def test_board_moves_with_a_plain_form_and_with_htmx(client, db_session, acme):
    """Moving a card works as a plain form post (redirect) and as htmx (the board comes back)."""
    _issue(db_session, acme)
    login(client, "owner@example.com")
    board = client.get("/acme/projects/WEB/board").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', board).group(1)
    plain = client.post(
        "/acme/issues/WEB-1/move",
        data={"csrf_token": token, "state": "in_review", "next": "board", "from_state": "todo"},
    )
    assert plain.status_code == 303 and plain.headers["Location"] == "/acme/projects/WEB/board"
    htmx = client.post(
        "/acme/issues/WEB-1/move",
        data={"csrf_token": token, "state": "done", "from_state": "in_review"},
        headers={"HX-Request": "true"},
    )
    assert htmx.status_code == 200
    html = htmx.get_data(as_text=True)
    assert 'id="board-columns"' in html and "<html" not in html
    done_column = html.split('id="col-done"')[1].split("</section>")[0]
    assert "WEB-1" in done_column
    bad = client.post(
        "/acme/issues/WEB-1/move", data={"csrf_token": token, "state": "nowhere", "from_state": "done"}
    )
    assert bad.status_code == 400


def test_board_columns_are_paged(client, db_session, acme):
    """A column shows 25 cards and loads the rest on request."""
    with tenant_context(acme.id):
        project = db_session.scalars(select(Project)).one()
        owner = _user(db_session, "owner@example.com")
        for n in range(30):
            issues.create_issue(project, owner, f"Card {n}")
        db_session.commit()
    login(client, "owner@example.com")
    board = client.get("/acme/projects/WEB/board").get_data(as_text=True)
    assert len(re.findall(r'class="board-card"', board)) == 25
    more = re.search(r'href="(/acme/projects/WEB/board/todo\?after=[^"]+)"', board).group(1)
    rest = client.get(more).get_data(as_text=True)
    assert len(re.findall(r'class="board-card"', rest)) == 5


def test_projects_are_managed_by_admins(app, client, db_session, acme):
    """Admins create and archive projects; members cannot; archived projects take no new issues."""
    member = app.test_client()
    login(member, "grace@example.com")
    assert member.get("/acme/projects/new").status_code == 403
    login(client, "owner@example.com")
    bad = post_form(client, "/acme/projects/new", name="API", key="web")
    assert bad.status_code == 422 and "already used" in bad.get_data(as_text=True)
    created = post_form(client, "/acme/projects/new", name="API", key="API")
    assert created.status_code == 303
    post_form(client, "/acme/projects/API/archive")  # its confirmation page's form
    response = _new_issue_form_for(client, "API")
    assert response.status_code == 422 and "archived" in response.get_data(as_text=True)


def _new_issue_form_for(client, key):
    return post_form(
        client, f"/acme/projects/{key}/issues/new", title="x", description="", state="todo", priority="0"
    )


def test_saved_views_belong_to_their_owner(app, client, db_session, acme):
    """A saved view stores the filters for its owner only."""
    login(client, "owner@example.com")
    saved = post_form(
        client,
        "/acme/projects/WEB/issues?state=todo",
        "/acme/views",
        name="My todo",
        state="todo",
        project_key="WEB",
    )
    assert saved.status_code == 303 and "state=todo" in saved.headers["Location"]
    assert "My todo" in client.get("/acme/projects/WEB/issues").get_data(as_text=True)
    other = app.test_client()
    login(other, "grace@example.com")
    assert "My todo" not in other.get("/acme/projects/WEB/issues").get_data(as_text=True)


def _board_cards(html: str) -> dict[str, list[str]]:
    """The refs of each column's cards, in the order the board shows them."""
    columns = {}
    for state, body in re.findall(
        r'<section class="board-column" aria-labelledby="col-(\w+)">(.*?)</section>', html, re.S
    ):
        columns[state] = re.findall(r'<span class="ref">([^<]+)</span>', body)
    return columns


def test_board_shows_each_columns_first_cards_with_their_people_and_labels(client, db_session, acme):
    """Each column shows its first 25 cards by rank, each with its assignees and labels, and offers
    more only where more follow."""
    with tenant_context(acme.id):
        project = db_session.scalars(select(Project)).one()
        owner, grace = _user(db_session, "owner@example.com"), _user(db_session, "grace@example.com")
        bug = db_session.scalars(select(Label).where(Label.name == "bug")).one()
        for n in range(28):
            issues.create_issue(project, owner, f"Todo {n}", assignee_ids=[grace.id] if n % 2 else [])
        for n in range(3):
            issues.create_issue(project, owner, f"Done {n}", state="done", label_ids=[bug.id])
        db_session.flush()
        last = db_session.scalars(select(Issue).where(Issue.title == "Todo 27")).one()
        last.rank = -1.0  # moved to the top of its column
        db_session.commit()
        expected = {
            state: [
                f"WEB-{number}"
                for number in db_session.scalars(
                    select(Issue.number).where(Issue.state == state).order_by(Issue.rank, Issue.id)
                )
            ]
            for state in ("todo", "done")
        }
    login(client, "owner@example.com")
    html = client.get("/acme/projects/WEB/board").get_data(as_text=True)
    columns = _board_cards(html)
    assert columns["todo"] == expected["todo"][:25] and columns["todo"][0] == "WEB-28"
    assert columns["done"] == expected["done"]
    assert all(columns[state] == [] for state in columns if state not in ("todo", "done"))
    assert re.findall(r"/acme/projects/WEB/board/(\w+)\?after=", html) == ["todo", "todo"]
    cards = dict(re.findall(r'<span class="ref">([^<]+)</span>(.*?)</li>', html, re.S))
    assert "Grace" in cards["WEB-2"] and "Grace" not in cards["WEB-1"]
    assert all(">bug<" in cards[ref] for ref in expected["done"])
    assert ">bug<" not in cards["WEB-1"]


@pytest.mark.parametrize("url", ["/acme/projects/WEB/board", "/acme/projects/WEB/issues"])
def test_board_and_list_read_issues_in_a_fixed_number_of_statements(app, client, db_session, acme, url):
    """The board reads its cards' ids, their rows, assignees and labels and its counts in five
    statements, whatever the number of columns and cards; the list its rows in three and how many
    issues match in one COUNT. Assignees and labels are found by issue ids, not by (tenant, id) tuples."""
    with tenant_context(acme.id):
        project = db_session.scalars(select(Project)).one()
        owner, grace = _user(db_session, "owner@example.com"), _user(db_session, "grace@example.com")
        labels = db_session.scalars(select(Label)).all()
        for state, _name, _category in DEFAULT_STATES:
            for n in range(3):
                issues.create_issue(
                    project,
                    owner,
                    f"{state} {n}",
                    state=state,
                    assignee_ids=[grace.id],
                    label_ids=[label.id for label in labels],
                )
        db_session.commit()
    login(client, "owner@example.com")
    app_cache_clear(app)
    with Statements(app) as statements:
        assert client.get(url).status_code == 200
    issue_reads = [
        s for s in statements.sent if re.search(r"\bFROM (issues|issue_assignees|issue_labels)\b", s)
    ]
    assert len(issue_reads) == (5 if "board" in url else 4), issue_reads
    if "issues" in url:
        assert sum(s.startswith("SELECT count(issues.id)") for s in issue_reads) == 1
    assert not [s for s in statements.sent if re.search(r"\) IN \((\(|VALUES)", s)]  # tuples


def test_my_work_reads_no_assignees_or_labels_it_does_not_show(app, client, db_session, acme):
    """My work lists the person's issues without loading their labels and assignees, which it does
    not show (and which were found by (tenant, id) tuples)."""
    with tenant_context(acme.id):
        project = db_session.scalars(select(Project)).one()
        owner = _user(db_session, "owner@example.com")
        labels = db_session.scalars(select(Label)).all()
        for n in range(3):
            issues.create_issue(
                project, owner, f"Mine {n}", assignee_ids=[owner.id], label_ids=[label.id for label in labels]
            )
            issues.set_watching(
                db_session.scalars(select(Issue).where(Issue.title == f"Mine {n}")).one(), owner, True
            )
        db_session.commit()
    login(client, "owner@example.com")
    with Statements(app) as statements:
        page = client.get("/acme/my-work")
    assert page.status_code == 200 and "Mine 2" in page.get_data(as_text=True)
    assert not [s for s in statements.sent if "issue_labels" in s]
    assert not [s for s in statements.sent if re.search(r"\) IN \((\(|VALUES)", s)]


def test_cached_board_carries_each_viewers_own_csrf_token(app, client, db_session, acme):
    """The board's cached columns get the viewer's own CSRF token, so moves work from a cache hit."""
    _issue(db_session, acme)
    login(client, "owner@example.com")
    client.get("/acme/projects/WEB/board")  # fills the cache
    grace = app.test_client()
    login(grace, "grace@example.com")
    board = grace.get("/acme/projects/WEB/board").get_data(as_text=True)
    card_form = board.split('class="board-card__move"')[1]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', card_form).group(1)
    assert "__worklane_csrf_token__" not in board
    moved = grace.post(
        "/acme/issues/WEB-1/move",
        data={"csrf_token": token, "state": "done", "next": "board", "from_state": "todo"},
    )
    assert moved.status_code == 303


@pytest.mark.parametrize(
    "page",
    [
        "/acme/issues",
        "/acme/projects/WEB/issues",
        "/acme/projects/WEB/board",
        "/acme/search?q=kestrel",
        "/acme/my-work",
    ],
)
def test_every_issue_link_on_a_page_of_issues_opens_that_issue(client, db_session, acme, page):
    """The links to issues on the lists, the board, search results and My work open the issue they name."""
    titles = {}
    for n in range(3):
        issue = _issue(
            db_session,
            acme,
            title=f"Kestrel sighting {n}",
            assignee_ids=[_user(db_session, "owner@example.com").id],
        )
        titles[issue.ref] = issue.title
    login(client, "owner@example.com")
    html = client.get(page).get_data(as_text=True)
    links = set(re.findall(r'href="(/acme/issues/[^"?#/]+)"', html))
    assert links == {f"/acme/issues/{ref}" for ref in titles}, links
    for link in links:
        assert titles[link.rsplit("/", 1)[1]] in client.get(link).get_data(as_text=True)


def test_board_places_a_card_below_another_or_one_step_up_or_down(client, db_session, acme):
    """A move with ``after`` puts the card just below that card; ``step`` moves it one place up or
    down its column (nothing at its end), as the board's buttons and drops do."""
    for title in ("One", "Two", "Three"):
        _issue(db_session, acme, title)
    login(client, "owner@example.com")
    with tenant_context(acme.id):
        ids = {i.ref: str(i.id) for i in db_session.scalars(select(Issue)).all()}

    def move(ref, **data):
        return post_form(client, "/acme/projects/WEB/board", f"/acme/issues/{ref}/move", **data)

    def todo():
        return _board_cards(client.get("/acme/projects/WEB/board").get_data(as_text=True))["todo"]

    assert move("WEB-1", state="todo", after=ids["WEB-2"]).status_code == 303
    assert todo() == ["WEB-2", "WEB-1", "WEB-3"]
    assert move("WEB-3", step="up", state="todo").status_code == 303
    assert todo() == ["WEB-2", "WEB-3", "WEB-1"]
    assert move("WEB-2", step="down", state="todo").status_code == 303
    assert todo() == ["WEB-3", "WEB-2", "WEB-1"]
    assert move("WEB-1", step="down", state="todo").status_code == 303
    assert todo() == ["WEB-3", "WEB-2", "WEB-1"]
    assert move("WEB-3", step="sideways", state="todo").status_code == 422
