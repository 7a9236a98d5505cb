"""Full-text search over issues: what finds an issue, in what order, with what excerpt, for whom."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from markupsafe import Markup
from sqlalchemy import create_engine, event, orm, text

from app.config import normalize_database_url
from app.core.tenancy import TenantNotSet, tenant_context, unscoped
from app.issues import search_excerpts
from app.issues.search import MAX_LIMIT, SearchPage, cached_search_issues, search_issues
from app.models import Organization
from app.models.base import utcnow
from app.models.work import Comment, Issue, Project
from tests.accounts import make_org, make_user
from tests.conftest import APP_ROLE


class Tracker:
    """One organization's projects, issues and comments, written and searched as that tenant."""

    def __init__(self, session, org_id: uuid.UUID):
        self.session = session
        self.org_id = org_id
        self.numbers: dict[uuid.UUID, int] = {}
        self.project = self.add_project("WEB", "Web")

    def add_project(self, key: str, name: str) -> Project:
        with tenant_context(self.org_id):
            project = Project(key=key, name=name)
            self.session.add(project)
            self.session.flush()
        return project

    def add_issue(self, title: str, description: str = "", *, project=None, age_minutes: int = 0) -> Issue:
        """A new issue; a larger ``age_minutes`` makes it older."""
        project = project or self.project
        number = self.numbers[project.id] = self.numbers.get(project.id, 0) + 1
        with tenant_context(self.org_id):
            issue = Issue(
                project_id=project.id,
                number=number,
                title=title,
                description=description,
                created_at=utcnow() - timedelta(minutes=age_minutes),
            )
            self.session.add(issue)
            self.session.flush()
        return issue

    def add_comment(self, issue: Issue, body: str) -> Comment:
        with tenant_context(self.org_id):
            comment = Comment(issue_id=issue.id, body=body)
            self.session.add(comment)
            self.session.flush()
        return comment

    def change(self, obj, **values) -> None:
        with tenant_context(self.org_id):
            for name, value in values.items():
                setattr(obj, name, value)
            self.session.flush()

    def delete(self, obj) -> None:
        with tenant_context(self.org_id):
            self.session.delete(obj)
            self.session.flush()

    def search(self, query: str, **options) -> SearchPage:
        with tenant_context(self.org_id):
            return search_issues(query, **options)

    def found(self, query: str, **options) -> list[uuid.UUID]:
        return self.search(query, **options).issue_ids


def tracker_for(session, name: str) -> Tracker:
    org = make_org(make_user(), name)
    return Tracker(session, org.id)


@pytest.fixture
def acme(db_session) -> Tracker:
    return tracker_for(db_session, "Acme")


@pytest.fixture
def globex(db_session) -> Tracker:
    return tracker_for(db_session, "Globex")


# --- what finds an issue -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["title", "description", "comment"])
def test_a_word_in_the_title_description_or_a_comment_finds_the_issue(acme, where):
    """A word found only in the title, only in the description or only in a comment finds the issue."""
    acme.add_issue("Unrelated neighbour", "Nothing to see")
    issue = acme.add_issue(
        "Checkout kestrel" if where == "title" else "Checkout page",
        "The kestrel flies" if where == "description" else "Plain text",
    )
    if where == "comment":
        acme.add_comment(issue, "Reminds me of a kestrel.")
    page = acme.search("kestrel")
    assert page.issue_ids == [issue.id]
    assert page.total == 1 and not page.has_more


def test_title_matches_rank_above_description_and_comment_matches(acme):
    """Title beats description beats comment, even when the weaker matches are newer."""
    in_title = acme.add_issue("Kestrel sighting", "Plain text", age_minutes=30)
    in_description = acme.add_issue("Second issue", "A kestrel again", age_minutes=20)
    in_comment = acme.add_issue("Third issue", "Plain text", age_minutes=10)
    acme.add_comment(in_comment, "One more kestrel")
    hits = acme.search("kestrel").hits
    assert [hit.issue_id for hit in hits] == [in_title.id, in_description.id, in_comment.id]
    assert hits[0].rank > hits[1].rank > hits[2].rank > 0


def test_equal_matches_come_newest_first(acme):
    """Issues that match equally well are ordered newest first."""
    older = acme.add_issue("Kestrel", age_minutes=5)
    newer = acme.add_issue("Kestrel", age_minutes=1)
    assert acme.found("kestrel") == [newer.id, older.id]


@pytest.mark.parametrize("query", ["deploying", "deployed", "deploys", "DEPLOY", "pipeline"])
def test_english_stemming_relates_forms_of_a_word(acme, query):
    """Queries are stemmed like the text: any form of "deploy" finds "Deployed the pipelines"."""
    issue = acme.add_issue("Deployed the pipelines")
    assert acme.found(query) == [issue.id]


@pytest.mark.parametrize("query", ["Safar", "safari cras", "depl", "deplo*", "pipe", "crash pipel"])
def test_the_last_word_also_finds_the_words_it_starts(acme, query):
    """As it is typed, the last word of a query finds longer words: "Safar" finds "Safari"."""
    issue = acme.add_issue("Safari crash in the deployment pipeline")
    acme.add_issue("Firefox works")
    assert acme.found(query) == [issue.id]


@pytest.mark.parametrize("query", ["depl pipeline", '"depl"', "pipeline -depl", "d", "saf*ari"])
def test_only_the_last_plain_word_is_a_prefix(acme, query):
    """A word before the last, a quoted word, an excluded word and a one-letter word are whole
    words: none of them finds "Deployment pipeline" (nor does the last one exclude it)."""
    issue = acme.add_issue("Deployment pipeline")
    expected = [issue.id] if query == "pipeline -depl" else []
    assert acme.found(query) == expected


def test_stop_words_are_ignored_by_both_engines(acme):
    """Stop words in a query neither find nor exclude anything ("how to deploy the app")."""
    issue = acme.add_issue("Deploy app")
    assert acme.found("how to deploy the app") == [issue.id]
    assert acme.search("the and of").total == 0


def test_phrases_alternatives_and_exclusions(acme):
    """Web-search syntax: "a phrase" keeps word order, `or` widens, `-word` excludes."""
    red_apple = acme.add_issue("Red apple pie", age_minutes=3)
    green_apple = acme.add_issue("Green apple tart", age_minutes=2)
    apple_red = acme.add_issue("Apple crumble with red currants", age_minutes=1)
    assert acme.found('"red apple"') == [red_apple.id]
    assert set(acme.found("red apple")) == {red_apple.id, apple_red.id}
    assert set(acme.found("apple -green")) == {red_apple.id, apple_red.id}
    assert set(acme.found("pie or tart")) == {red_apple.id, green_apple.id}
    assert acme.search("-apple").total == 0  # nothing to look for


def test_empty_and_blank_queries_find_nothing(acme):
    """An empty, blank or punctuation-only query is an empty page, not every issue."""
    acme.add_issue("Anything")
    for query in ("", "   ", "\t\n", "!!! ???", '""', None):
        page = acme.search(query)
        assert page == SearchPage() and page.hits == [] and page.total == 0


# --- the index follows every change ------------------------------------------------------------


def test_edits_to_an_issue_are_found_by_the_next_search(acme):
    """A changed title or description is searched as it is now: new words found, old ones gone."""
    issue = acme.add_issue("Falcon", "Old osprey notes")
    acme.change(issue, title="Merlin")
    assert acme.found("falcon") == []
    assert acme.found("merlin") == [issue.id]
    acme.change(issue, description="New harrier notes")
    assert acme.found("osprey") == []
    assert acme.found("harrier") == [issue.id]
    acme.change(issue, state="done", priority=3)  # other columns leave the index as it was
    assert acme.found("merlin harrier") == [issue.id]


def test_comments_added_edited_and_deleted_are_found_by_the_next_search(acme):
    """A new comment is searchable at once; an edited or deleted one no longer finds the issue."""
    issue = acme.add_issue("Bird survey")
    first = acme.add_comment(issue, "Spotted a goshawk")
    second = acme.add_comment(issue, "And a buzzard")
    assert acme.found("goshawk buzzard") == [issue.id]
    acme.change(first, body="Spotted a sparrowhawk")
    assert acme.found("goshawk") == []
    assert acme.found("sparrowhawk") == [issue.id]
    acme.delete(second)
    assert acme.found("buzzard") == []
    assert acme.found("sparrowhawk") == [issue.id]


def test_deleted_issues_are_not_found(db_session, acme):
    """Deleting an issue (with its comments) takes it out of the search."""
    issue = acme.add_issue("Peregrine")
    acme.add_comment(issue, "Fast peregrine")
    acme.delete(issue)
    assert acme.found("peregrine") == []
    sqlite = db_session.get_bind().dialect.name == "sqlite"
    with tenant_context(acme.org_id):  # its row in the search table is gone too
        rows = db_session.execute(
            text("SELECT count(*) FROM issue_search WHERE issue_id = :id"),
            {"id": issue.id.hex if sqlite else issue.id},
        ).scalar()
    assert rows == 0


# --- excerpts ---------------------------------------------------------------------------------------


def test_snippet_marks_matches_and_escapes_user_text(acme):
    """Matched words are wrapped in <mark>; everything else, markup included, is escaped text."""
    issue = acme.add_issue("<script>alert(1)</script> deploy", 'Tom & Jerry said "<b>hi</b>"')
    hit = acme.search("deploy").hits[0]
    assert hit.issue_id == issue.id
    assert isinstance(hit.snippet, Markup)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <mark>deploy</mark>" in hit.snippet
    assert "<script" not in hit.snippet and "</script" not in hit.snippet
    without_marks = str(hit.snippet).replace("<mark>", "").replace("</mark>", "")
    assert "<" not in without_marks and ">" not in without_marks
    jerry = acme.search("jerry").hits[0].snippet
    assert "Tom &amp; <mark>Jerry</mark> said &#34;&lt;b&gt;hi&lt;/b&gt;&#34;" in jerry


def test_snippet_escapes_text_that_looks_like_markup_or_entities(acme):
    """Entities and tags typed by a user come back as the same visible text, never as markup."""
    acme.add_issue("Kestrel &lt;b&gt; <i>x</i> &amp; Vec<String>")
    snippet = acme.search("kestrel").hits[0].snippet
    assert "&amp;lt;b&amp;gt;" in snippet
    assert "&lt;i&gt;x&lt;/i&gt;" in snippet
    assert "&amp;amp;" in snippet
    assert "Vec&lt;String&gt;" in snippet


def test_snippet_shows_the_comment_that_matched(acme):
    """When only a comment matches, the excerpt comes from that comment."""
    issue = acme.add_issue("Bird survey", "Counting birds in spring")
    acme.add_comment(issue, "The <kestrel> was hovering over the field")
    snippet = acme.search("hovering").hits[0].snippet
    assert "<mark>hovering</mark>" in snippet
    assert "&lt;kestrel&gt;" in snippet


def test_snippet_comes_from_the_issue_itself_when_it_matches_there(acme):
    """When the title or description matches, the excerpt is theirs, not that of a matching comment."""
    issue = acme.add_issue("Bird survey", "A kestrel nests under the bridge")
    acme.add_comment(issue, "Another kestrel was seen by the lighthouse")
    snippet = acme.search("kestrel").hits[0].snippet
    assert "<mark>kestrel</mark> nests under the bridge" in snippet
    assert "lighthouse" not in snippet
    both = acme.search("kestrel lighthouse").hits[0].snippet  # only the comments hold both
    assert "<mark>lighthouse</mark>" in both


def test_an_excerpt_follows_edits_to_the_issue_and_its_comments(acme):
    """After its description or a comment changes, a hit's excerpt shows the text as it is now."""
    issue = acme.add_issue("Raptor survey", "The kestrel hovers over the meadow")
    assert "meadow" in acme.search("kestrel").hits[0].snippet
    acme.change(issue, description="The kestrel hovers over the harbour")
    snippet = acme.search("kestrel").hits[0].snippet
    assert "harbour" in snippet and "meadow" not in snippet
    quiet = acme.add_issue("Bird survey", "Counting birds")
    comment = acme.add_comment(quiet, "A goshawk over the dunes")
    assert "dunes" in acme.search("goshawk").hits[0].snippet
    acme.change(comment, body="A goshawk over the cliffs")
    snippet = acme.search("goshawk").hits[0].snippet
    assert "cliffs" in snippet and "dunes" not in snippet
    acme.add_comment(quiet, "Then a goshawk by the lighthouse")
    assert "lighthouse" in acme.search("goshawk lighthouse").hits[0].snippet


@pytest.mark.postgres_only
def test_after_an_edit_only_the_edited_issue_is_excerpted_again(db_session, acme):
    """A search after one of its hits changed makes that hit's excerpt only; the others are kept."""
    issues = [acme.add_issue(f"Kestrel {n}", f"Kestrel notes number {n}", age_minutes=n) for n in range(5)]
    assert _excerpted(db_session, acme, "kestrel") == {issue.id for issue in issues}
    assert _excerpted(db_session, acme, "kestrel") == set()
    acme.change(issues[2], description="Kestrel notes rewritten")
    assert _excerpted(db_session, acme, "kestrel") == {issues[2].id}
    snippets = {hit.issue_id: str(hit.snippet) for hit in acme.search("kestrel").hits}
    assert "rewritten" in snippets[issues[2].id]
    assert all(f"number {n}" in snippets[issue.id] for n, issue in enumerate(issues) if n != 2)
    assert _excerpted(db_session, acme, "KESTRELS") == set()  # the same question to PostgreSQL
    assert _excerpted(db_session, acme, "kestrel notes") == {issue.id for issue in issues}  # another question


@pytest.mark.postgres_only
def test_a_cached_search_after_an_edit_makes_the_edited_excerpt_in_its_one_statement(
    app, db_session, acme, monkeypatch
):
    """After an edit of one hit, the cached search reads its page and makes that hit's excerpt in one
    statement; the other hits keep the excerpts of the page read before."""
    issues = [acme.add_issue(f"Kestrel {n}", f"Kestrel notes number {n}", age_minutes=n) for n in range(5)]
    ids = [issue.id for issue in issues]
    made = []
    make = search_excerpts.Marks.to_markup

    def counting(self, excerpt, *, html_escaped=False):
        made.append(excerpt)
        return make(self, excerpt, html_escaped=html_escaped)

    monkeypatch.setattr(search_excerpts.Marks, "to_markup", counting)
    with app.app_context():
        db_session.commit()
        with tenant_context(acme.org_id):
            first = cached_search_issues("kestrel")
        assert len(made) == 5
        acme.change(issues[2], description="Kestrel notes rewritten")
        db_session.commit()  # moves the cached versions
        made.clear()
        with _statements(db_session) as sent, tenant_context(acme.org_id):
            page = cached_search_issues("kestrel")
    assert [s for s in sent if "issue_search" in s] == sent and len(sent) == 1, sent
    assert len(made) == 1 and "rewritten" in made[0]
    assert page.issue_ids == first.issue_ids
    snippets = {hit.issue_id: str(hit.snippet) for hit in page.hits}
    assert "<mark>Kestrel</mark> notes rewritten" in snippets[ids[2]]
    assert all(f"number {n}" in snippets[issue_id] for n, issue_id in enumerate(ids) if n != 2)
    assert {hit.issue_id: hit.snippet for hit in first.hits if hit.issue_id != ids[2]} == {
        hit.issue_id: hit.snippet for hit in page.hits if hit.issue_id != ids[2]
    }


@contextmanager
def _statements(session):
    """The statements (not the RLS settings) the session's connection sends in the block."""
    connection = session.connection()
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "set_config" not in statement:
            sent.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(connection, "before_cursor_execute", record)


def _excerpted(session, tracker: Tracker, query: str) -> set[uuid.UUID]:
    """The issues whose excerpts a search made (the ids the excerpt statement was sent)."""
    connection = session.connection()
    sent: list[dict] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "ts_headline" in statement:
            sent.append(dict(parameters))

    event.listen(connection, "before_cursor_execute", record)
    try:
        tracker.search(query)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert len(sent) <= 1
    return {uuid.UUID(str(v)) for params in sent for name, v in params.items() if name.startswith("ids")}


def test_user_text_containing_other_sentinels_stays_text(acme):
    """Characters an engine could use as highlight markers are user text like any other."""
    acme.add_issue("Kestrel \x02start\x03 \ue000x\ue001 S0E0")
    snippet = acme.search("kestrel").hits[0].snippet
    assert snippet.count("<mark>") == 1 and snippet.count("</mark>") == 1


# --- hostile input ------------------------------------------------------------------------------------

HOSTILE_QUERIES = [
    '"',
    "'",
    "(",
    ")",
    "NEAR(",
    "NEAR(a b, 2)",
    "a AND",
    "AND OR NOT",
    "-",
    "--",
    "*",
    "^",
    ":",
    "title:",
    "title:kestrel",
    "{title description}: kestrel",
    "\\",
    "\\\\'",
    '"unterminated phrase',
    "a & b | !c <-> d",
    "'; DROP TABLE issues; --",
    "%_%",
    "x" * 10_000,
    "kestrel " * 2_000,
    "kestrel-" * 200,
    "ünïcödé 日本語 🦅 مرحبا",
    "\x00",
    "kestrel\x00",
    "\ud800 kestrel",
    "\x02\x03",
    "S0 E0",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=range(len(HOSTILE_QUERIES)))
def test_hostile_queries_never_raise(acme, query):
    """Quotes, operators, column filters, NUL, lone surrogates and huge input are never an error."""
    issue = acme.add_issue('Kestrel (bird) "quoted" NEAR: -dash- O\'Brien', "日本語 🦅 ünïcödé")
    page = acme.search(query)
    assert isinstance(page, SearchPage)
    assert set(page.issue_ids) <= {issue.id}


@pytest.mark.parametrize(
    "query", ["kestrel)", "(kestrel", 'kestrel"', "*kestrel*", "kestrel AND", "kestrel:", "-- kestrel"]
)
def test_operators_around_a_word_are_just_punctuation(acme, query):
    """Syntax characters around a real word are ignored: the word still finds its issue."""
    issue = acme.add_issue("Kestrel nest")
    assert acme.found(query) == [issue.id]


def test_unicode_words_are_found(acme):
    """Words outside ASCII are words too."""
    issue = acme.add_issue("Überweisung fehlgeschlagen", "Zahlung 日本語")
    assert acme.found("überweisung") == [issue.id]
    assert acme.found("日本語") == [issue.id]


# --- tenants, projects, pages ---------------------------------------------------------------------------


def test_a_tenant_never_sees_another_tenants_issues(acme, globex):
    """A's search never returns B's issues, even when B's match better and are newer."""
    mine = acme.add_issue("Plain title", "a kestrel", age_minutes=10)
    theirs = globex.add_issue("Kestrel kestrel kestrel", "kestrel kestrel", age_minutes=1)
    globex.add_comment(theirs, "kestrel")
    page = acme.search("kestrel")
    assert page.issue_ids == [mine.id] and page.total == 1
    assert globex.found("kestrel") == [theirs.id]
    assert acme.found("kestrel", project_id=globex.project.id) == []


def test_search_without_a_tenant_raises(acme):
    """With no current tenant, search refuses instead of searching everyone's issues."""
    acme.add_issue("Kestrel")
    with pytest.raises(TenantNotSet):
        search_issues("kestrel")
    with pytest.raises(TenantNotSet):
        search_issues("")


def test_the_project_filter_narrows_the_search(acme):
    """With project_id, only that project's issues are found (an invalid id finds nothing)."""
    web = acme.add_issue("Kestrel on web")
    mobile_project = acme.add_project("MOB", "Mobile")
    mobile = acme.add_issue("Kestrel on mobile", project=mobile_project)
    assert set(acme.found("kestrel")) == {web.id, mobile.id}
    assert acme.found("kestrel", project_id=mobile_project.id) == [mobile.id]
    assert acme.found("kestrel", project_id=str(acme.project.id)) == [web.id]
    assert acme.found("kestrel", project_id=uuid.uuid4()) == []
    assert acme.found("kestrel", project_id="not-a-uuid") == []


def test_limit_and_offset_page_through_the_results(acme):
    """Pages are consecutive slices of one ordering; total counts every match."""
    issues = [acme.add_issue(f"Kestrel {n}", age_minutes=n) for n in range(7)]  # newest first
    first = acme.search("kestrel", limit=3)
    second = acme.search("kestrel", limit=3, offset=3)
    last = acme.search("kestrel", limit=3, offset=6)
    beyond = acme.search("kestrel", limit=3, offset=30)
    assert first.issue_ids + second.issue_ids + last.issue_ids == [issue.id for issue in issues]
    assert [page.total for page in (first, second, last, beyond)] == [7, 7, 7, 7]
    assert first.has_more and second.has_more and not last.has_more and not beyond.has_more
    assert beyond.hits == []


def test_limit_and_offset_are_bounded(acme):
    """A silly limit or offset is clamped instead of failing or returning everything."""
    acme.add_issue("Kestrel")
    assert len(acme.search("kestrel", limit=0).hits) == 1
    assert len(acme.search("kestrel", limit=-5, offset=-5).hits) == 1
    page = acme.search("kestrel", limit=10**9)
    assert page.total == 1 and MAX_LIMIT == 100


def test_a_hit_carries_what_a_result_shows(acme):
    """Each hit has its issue's reference, title and state, read with the match itself."""
    mobile = acme.add_project("MOB", "Mobile")
    acme.add_issue("Kestrel on web")
    issue = acme.add_issue("Kestrel & <co>", project=mobile)
    acme.change(issue, state="in_review")
    hit = acme.search("kestrel", project_id=mobile.id).hits[0]
    assert (hit.issue_id, hit.ref, hit.title, hit.state) == (issue.id, "MOB-1", "Kestrel & <co>", "in_review")


def test_cached_answers_are_kept_apart_by_words_project_and_page(app, acme):
    """Each question (words, project, page) has its own cached answer, equal to the search's own."""
    mobile = acme.add_project("MOB", "Mobile")
    for n in range(5):
        acme.add_issue(f"Kestrel {n}", f"Osprey {n}", project=mobile if n % 2 else None, age_minutes=n)
    questions = [
        ("kestrel", {}),
        ("osprey", {}),
        ("kestrel", {"project_id": mobile.id}),
        ("kestrel", {"limit": 2}),
        ("kestrel", {"limit": 2, "offset": 2}),
        ("kestrel", {"limit": 2, "offset": 20}),
        ("-kestrel", {}),
    ]
    with app.app_context(), tenant_context(acme.org_id):
        for _ in range(2):  # misses, then hits
            for query, options in questions:
                expected = search_issues(query, **options)
                assert cached_search_issues(query, **options) == expected, (query, options)
    with app.app_context(), pytest.raises(TenantNotSet):
        cached_search_issues("kestrel")


# --- PostgreSQL: the index and its isolation ------------------------------------------------------


def _capture_search_sql(session, tracker: Tracker, query: str) -> tuple[str, dict]:
    """The statement and parameters ``search_issues`` sends to the database."""
    connection = session.connection()
    sent = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "issue_search_matches" in statement:
            sent.append((statement, dict(parameters)))

    event.listen(connection, "before_cursor_execute", record)
    try:
        tracker.search(query)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert len(sent) == 1
    return sent[0]


def _add_many_issues(tracker: Tracker, count: int) -> None:
    with tenant_context(tracker.org_id):
        tracker.session.add_all(
            Issue(
                project_id=tracker.project.id,
                number=1000 + n,
                title=f"Issue {n}" + (" kestrel" if n % 50 == 0 else ""),
                description=f"Routine work item number {n}",
            )
            for n in range(count)
        )
        tracker.session.flush()


def _matches(session, query: str) -> list[uuid.UUID]:
    """What the app's role gets from ``issue_search_matches`` in the session's tenant setting."""
    statement = text("SELECT issue_id FROM issue_search_matches(websearch_to_tsquery('english', :query))")
    return [row[0] for row in session.execute(statement, {"query": query})]


@pytest.mark.postgres_only
def test_the_app_roles_search_answers_from_the_gin_index(db_session, acme):
    """As the app's role, under row-level security, the search finds its matches through the GIN index.

    The plans of the statement and of the function it calls are shown by auto_explain, loaded
    by the database's superuser, which then acts as the app's role; all inside one transaction
    that is rolled back.
    """
    statement, parameters = _capture_search_sql(db_session, acme, "kestrel")
    admin = create_engine(normalize_database_url(os.environ["TEST_POSTGRES_URL"]))
    plans: list[str] = []
    try:
        with admin.connect() as connection:
            transaction = connection.begin()
            session = orm.Session(bind=connection, join_transaction_mode="create_savepoint")
            org = Organization(slug=f"gin-{uuid.uuid4().hex[:8]}", name="Gin")
            session.add(org)
            session.flush()
            _add_many_issues(Tracker(session, org.id), 300)
            # What autovacuum does in the background: statistics, and the GIN index's pending
            # list (where new entries wait) merged into the index proper.
            connection.exec_driver_sql("ANALYZE issue_search")
            connection.exec_driver_sql("SELECT gin_clean_pending_list('ix_issue_search_vector')")
            connection.connection.driver_connection.add_notice_handler(
                lambda notice: plans.append(notice.message_primary or "")
            )
            for setting in (
                "LOAD 'auto_explain'",
                "SET LOCAL auto_explain.log_min_duration = 0",
                "SET LOCAL auto_explain.log_nested_statements = on",
                "SET LOCAL auto_explain.log_level = notice",
                "SET LOCAL enable_seqscan = off",
                f"SET LOCAL ROLE {APP_ROLE}",
            ):
                connection.exec_driver_sql(setting)
            with tenant_context(org.id):
                rows = connection.exec_driver_sql(statement, {**parameters, "tenant_id": org.id}).all()
            session.close()
            transaction.rollback()
    finally:
        admin.dispose()
    assert len(rows) == 6  # issues 0, 50, … 250
    plan = "\n".join(plans)
    assert "Bitmap Index Scan on ix_issue_search_vector" in plan, plan
    assert "on issues" in plan and "Seq Scan on issues" not in plan, plan


@pytest.mark.postgres_only
def test_the_index_finds_only_the_tenant_in_the_connections_setting(db_session, acme, globex):
    """issue_search_matches answers for the tenant row-level security uses, and for nobody without one.

    The app's role cannot name another tenant through it, and with no tenant set (even with the
    unscoped switch on) it finds nothing rather than everyone's issues; the table itself shows
    the app's role only the current tenant's rows.
    """
    mine = acme.add_issue("Plain title", "a kestrel")
    theirs = [globex.add_issue("Kestrel kestrel", "kestrel") for _ in range(3)]
    with tenant_context(acme.org_id):
        assert _matches(db_session, "kestrel") == [mine.id]
        assert acme.search("kestrel").total == 1
        visible = db_session.execute(text("SELECT DISTINCT tenant_id FROM issue_search")).scalars().all()
        assert visible == [acme.org_id]
    with tenant_context(globex.org_id):
        assert set(_matches(db_session, "kestrel")) == {issue.id for issue in theirs}
    assert _matches(db_session, "kestrel") == []
    assert db_session.execute(text("SELECT count(*) FROM issue_search")).scalar() == 0
    with unscoped("test check"):
        assert _matches(db_session, "kestrel") == []
        assert db_session.execute(text("SELECT count(*) FROM issue_search")).scalar() >= 4


@pytest.mark.postgres_only
def test_only_roles_that_read_issues_may_call_the_index(db_session):
    """issue_search_matches is not callable by every role (PUBLIC), only by those that may read issues."""
    grantees = db_session.execute(
        text(
            "SELECT a.grantee FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
            "WHERE p.proname = 'issue_search_matches' AND a.privilege_type = 'EXECUTE'"
        )
    ).scalars()
    assert 0 not in set(grantees)  # 0: PUBLIC
    assert db_session.execute(
        text("SELECT has_function_privilege(current_user, 'issue_search_matches(tsquery)', 'EXECUTE')")
    ).scalar()
