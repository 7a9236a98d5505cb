"""The search page: what a result shows, read in one statement, and cached per organization and
question without ever showing another organization's issues or a result older than the last edit."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from flask import template_rendered
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.issues import services as issues
from app.models import Comment, Issue, User
from tests.accounts import login, post_form
from tests.factories import make_acme, make_beta
from tests.support import statements


@pytest.fixture
def acme(db_session):
    """Acme: Olive (owner), Grace (member) and Vic (viewer); projects WEB and API."""
    acme = make_acme({"grace@example.com": "member", "vic@example.com": "viewer"}, projects=("WEB", "API"))
    db_session.commit()
    return acme


def _results(html: str) -> str:
    """The results of a search page, of every project's group in order ('' when there is none)."""
    return "\n".join(group.strip() for group in re.findall(r'<ol class="results">(.*?)</ol>', html, re.S))


def _search(client, words: str, org: str = "acme") -> str:
    response = client.get(f"/{org}/search?q={quote(words)}")
    assert response.status_code == 200
    return _results(response.get_data(as_text=True))


def _refs(results: str) -> list[str]:
    return re.findall(r'<span class="ref">([^<]+)</span>', results)


class Statements(statements.Statements):
    """Every statement the app's engine sends in the block, and which of them search."""

    @property
    def searches(self) -> list[str]:
        return [s for s in self.sent if "ts_rank_cd" in s or "issue_search" in s]


def test_a_result_shows_its_reference_title_state_and_excerpt(client, db_session, acme):
    """Each result links the issue by its reference, with its title, its state and the matching excerpt."""
    issue = acme.add_issue("Kestrel nest on the roof", "Seen at dawn", project="API")
    with tenant_context(acme.id):
        issues.update_issue(issue, acme.owner, state="in_progress")
        db_session.commit()
    login(client, "owner@example.com")
    results = _search(client, "kestrel")
    assert _refs(results) == ["API-1"]
    assert 'href="/acme/issues/API-1"' in results
    assert "Kestrel nest on the roof</a>" in results
    assert 'class="state state--in_progress">In progress<' in results
    assert "<mark>Kestrel</mark> nest on the roof" in results


def test_results_are_grouped_by_project_best_first_with_the_total(client, db_session, acme):
    """Results come in one group per project, the project of the best match first; the page says
    how many matched in all when it shows only the best."""
    web = acme.add_issue("Osprey sighting", "osprey", project="WEB").ref
    api = acme.add_issue("Osprey osprey osprey in the title", "osprey osprey", project="API").ref
    for n in range(31):
        acme.add_issue(f"Note {n}", "an osprey was mentioned", project="WEB")
    db_session.commit()
    login(client, "owner@example.com")
    html = client.get("/acme/search?q=osprey").get_data(as_text=True)
    headings = re.findall(r'<h2 class="results-group__title" id="results-(\w+)">', html)
    assert headings == ["API", "WEB"] or headings == ["WEB", "API"]
    assert "33 results for “osprey”, the best 30 shown" in html
    refs = _refs(_results(html))
    assert len(refs) == 30 and api in refs and web in refs
    first_group = refs[: refs.index(next(r for r in refs if not r.startswith(headings[0])))]
    assert all(r.startswith(headings[0] + "-") for r in first_group)
    assert sorted(refs, key=lambda r: headings.index(r.split("-")[0])) == refs  # one block per project


HOSTILE_TITLE = "<script>alert(\"x\")</script> kestrel & 'quotes' </li><img src=x onerror=alert(1)>"
HOSTILE_TEXT = 'Tom & Jerry "<b>kestrel</b>" &amp; </p><iframe src="javascript:alert(1)">'


def test_hostile_titles_descriptions_and_comments_stay_text(client, db_session, acme):
    """Markup, quotes and entities typed into an issue are shown as text: only <mark> is markup."""
    issue = acme.add_issue(HOSTILE_TITLE, HOSTILE_TEXT)
    with tenant_context(acme.id):
        issues.add_comment(issue, acme.owner, "<script>document.cookie</script> biscuit")
        db_session.commit()
    login(client, "owner@example.com")
    in_title, in_description, in_comment = (_search(client, w) for w in ("kestrel", "jerry", "biscuit"))
    for results in (in_title, in_description, in_comment):
        assert _refs(results) == ["WEB-1"]
        tags = set(re.findall(r"</?([a-zA-Z][\w-]*)", results))
        assert tags <= {"li", "a", "span", "p", "mark"}, results
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; <mark>kestrel</mark>" in in_title
    assert "<mark>kestrel</mark> &amp; &#39;quotes&#39;" in in_title
    assert "&lt;img src=x onerror=alert(1)&gt;" in in_title
    assert "Tom &amp; <mark>Jerry</mark> &#34;&lt;b&gt;kestrel&lt;/b&gt;&#34; &amp;amp;" in in_description
    assert "&amp;amp; &lt;/p&gt;&lt;iframe" in in_description
    assert "&lt;script&gt;document.cookie&lt;/script&gt; <mark>biscuit</mark>" in in_comment


def test_a_search_runs_the_same_statements_for_forty_hits_as_for_one(app, client, db_session, acme):
    """Results are read with what they show in one statement (on PostgreSQL their excerpts in a
    second): the count does not grow with the hits."""
    acme.add_issue("Osprey over the lake")
    for n in range(40):
        issue = acme.add_issue(f"Kestrel {n}", f"Hovering kestrel number {n}")
        with tenant_context(acme.id):
            issues.add_comment(issue, acme.owner, "A kestrel again")
            db_session.flush()
    db_session.commit()
    login(client, "owner@example.com")
    client.get("/acme/search")  # the signed-in person's account is cached from here on
    with Statements(app) as one:
        assert len(_refs(_search(client, "osprey"))) == 1
    with Statements(app) as thirty:
        assert len(_refs(_search(client, "kestrel"))) == 30
    assert len(thirty.sent) == len(one.sent), (one.sent, thirty.sent)
    postgres = db_session.get_bind().dialect.name == "postgresql"
    assert len(one.searches) == len(thirty.searches) == (2 if postgres else 1), thirty.searches
    assert not [s for s in thirty.sent if s not in thirty.searches and re.search(r"\bissues\b", s)]


def test_a_repeated_search_is_served_from_the_cache(app, client, db_session, acme):
    """Asked again, the same question runs no query; asked by another member, it is not searched again."""
    acme.add_issue("Kestrel nest")
    db_session.commit()
    login(client, "owner@example.com")
    client.get("/acme/search")
    first = _search(client, "kestrel")
    with Statements(app) as again:
        assert _search(client, "kestrel") == first
    assert again.sent == []
    vic = app.test_client()
    login(vic, "vic@example.com")
    vic.get("/acme/search")
    with Statements(app) as other_member:
        page = vic.get("/acme/search?q=kestrel").get_data(as_text=True)
    assert other_member.searches == [] and _results(page) == first
    assert not [s for s in other_member.sent if re.search(r"\b(issues|comments|projects)\b", s)]
    assert "Vic Viewer" in page and "Olive Owner" not in page  # the page around them is the viewer's own


def test_organizations_never_share_cached_results(app, client, db_session, acme, redis_client):
    """A question asked in two organizations gets each one its own issues, cached under its own key."""
    acme.add_issue("Acme kestrel")
    beta = make_beta(projects=("WEB",))
    beta.add_issue("Beta kestrel")
    db_session.commit()
    tenants = {str(acme.id), str(beta.id)}
    login(client, "owner@example.com")
    assert "Acme kestrel" in _search(client, "kestrel")
    bert = app.test_client()
    login(bert, "bert@example.com")
    results = _search(bert, "kestrel", org="beta")
    assert "Beta kestrel" in results and "Acme" not in results
    assert "Acme kestrel" in _search(client, "kestrel") and "Beta" not in _search(client, "kestrel")
    assert bert.get("/acme/search?q=kestrel").status_code == 404  # not a member of Acme
    keys = [k.decode().split(":") for k in redis_client.keys("*:search:*")]  # results, and whole pages
    assert {key[3] for key in keys} == tenants
    assert sorted(key[3] for key in keys if key[4] == "search") == sorted(tenants)


def test_an_edit_shows_in_the_next_search(client, db_session, acme):
    """After an issue is edited, the next search finds it by its new words, with its new state."""
    acme.add_issue("Kestrel nest")
    db_session.commit()
    login(client, "owner@example.com")
    assert _refs(_search(client, "kestrel")) == ["WEB-1"]
    assert _search(client, "merlin") == ""
    edit = {"title": "Merlin nest", "description": "", "priority": "0"}
    post_form(client, "/acme/issues/WEB-1", "/acme/issues/WEB-1/edit", state="todo", **edit)
    assert _search(client, "kestrel") == ""
    assert _refs(_search(client, "merlin")) == ["WEB-1"]
    post_form(client, "/acme/issues/WEB-1", "/acme/issues/WEB-1/edit", state="done", **edit)
    assert "state--done" in _search(client, "merlin")


def test_a_comment_shows_in_the_next_search(client, db_session, acme):
    """A comment just added, edited or deleted changes the next search's results and excerpt."""
    acme.add_issue("Bird survey")
    db_session.commit()
    acme_id = acme.id
    login(client, "owner@example.com")
    assert _search(client, "goshawk") == ""
    post_form(client, "/acme/issues/WEB-1", "/acme/issues/WEB-1/comments", body="Spotted a goshawk")
    assert "<mark>goshawk</mark>" in _search(client, "goshawk")
    with tenant_context(acme_id):
        comment = db_session.query(Comment).one()
        comment.body = "Spotted a buzzard"
        db_session.commit()
    assert _search(client, "goshawk") == ""
    assert _refs(_search(client, "buzzard")) == ["WEB-1"]
    with tenant_context(acme_id):
        db_session.delete(db_session.query(Comment).one())
        db_session.commit()
    assert _search(client, "buzzard") == ""


def _renders(app, client, url: str) -> tuple[list[str], str]:
    """The templates rendered for ``url``, and the page."""
    rendered = []

    def record(sender, template, context, **extra):
        rendered.append(template.name)

    with template_rendered.connected_to(record, app):
        html = client.get(url).get_data(as_text=True)
    return rendered, html


def test_an_edit_that_changes_no_result_shown_keeps_the_search_page_as_it_was(app, client, db_session, acme):
    """After an edit of an issue the search does not show, the page is searched again but not
    rendered again; an edit of one it shows, and a change of the person's own, render it anew."""
    acme.add_issue("Kestrel nest")
    acme.add_issue("Roof repairs")
    db_session.commit()
    acme_id = acme.id

    def retitle(number: int, title: str) -> None:
        with tenant_context(acme_id):
            issue = db_session.scalars(select(Issue).where(Issue.number == number)).one()
            owner = db_session.scalars(select(User).where(User.email == "owner@example.com")).one()
            issues.update_issue(issue, owner, title=title)
            db_session.commit()

    login(client, "owner@example.com")
    url = "/acme/search?q=kestrel"
    first_rendered, first = _renders(app, client, url)
    assert "issues/search.html" in first_rendered
    retitle(2, "Roof repairs, east side")
    with Statements(app) as after_edit:
        rendered, page = _renders(app, client, url)
    assert after_edit.searches, "the results are read again after an edit"
    assert rendered == [] and _results(page) == _results(first)
    assert _renders(app, client, url)[0] == []  # stored again under the new versions: a hit
    retitle(1, "Kestrel nest, second brood")
    rendered, page = _renders(app, client, url)
    assert "issues/search.html" in rendered and "second brood" in _results(page)
    grace = app.test_client()
    login(grace, "grace@example.com")
    post_form(grace, "/acme/issues/WEB-1", "/acme/issues/WEB-1/comments", body="@owner the kestrel is back")
    rendered, page = _renders(app, client, url)
    assert "issues/search.html" in rendered  # her mention moved the owner's unread count
    assert re.search(r'class="count">1<', page), page[:3000]
