"""Full-text search over the current tenant's issues: one interface, two engines.

``search_issues(query)`` finds issues by their title, description and comments, best match
first (title matches outrank description matches, which outrank comment matches), then
newest. The database keeps the index current (migrations 0004 and 0012):

- PostgreSQL: the table ``issue_search`` (one tsvector per issue, 'english' configuration,
  GIN-indexed; migration 0012), matched with ``to_tsquery`` of the text built here, ranked with
  ``ts_rank_cd``, excerpted with ``ts_headline``.
- SQLite: the FTS5 table ``issue_search`` (porter stemming), queried with a MATCH expression
  built here from quoted terms, ranked with ``bm25()``, excerpted with ``snippet()``.

Both understand the same query language, the one of web search boxes: words (all must
match, in any form English stemming relates: "deploying" finds "deployed"), ``"a phrase"``,
``this or that``, and ``-word`` to exclude; the last word, as it is being typed, also finds
the words it starts ("Safar" finds "Safari"). Any input is safe: it can never be a syntax
error, and a query with nothing to look for finds nothing.

One statement reads a page of hits with all a result shows (reference, title, state), whatever
the number of hits; on SQLite it makes the excerpts too. On PostgreSQL, where making an excerpt
(``ts_headline``) is most of a search's time, each is kept per issue, question and version of
the issue's text, and a second statement makes only those not kept. ``cached_search_issues``
keeps each page of results in the cache for a short time, per tenant and question, checked
against the versions of the issues and comments on every read; once they have moved (after an
edit), the page read before lends its excerpts, each with the version of the text it was made
from, and the one statement that reads the page makes the others (the edited issue's).

The statements and why they read as they do are in ``search_sql``, the query language in
``search_terms``, the excerpts in ``search_excerpts``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

from markupsafe import Markup

from app.core import cache
from app.core.tenancy import require_tenant
from app.extensions import db
from app.issues.search_excerpts import EXCERPT_FORMAT, Marks, excerpts_made_or_kept, postgres_excerpts
from app.issues.search_sql import (
    POSTGRES_SEARCH,
    POSTGRES_SEARCH_EXCERPTING,
    SQLITE_SEARCH,
)
from app.issues.search_terms import clean_query, fts5_expression, parse_query, tsquery_text

#: Largest page size a caller may ask for.
MAX_LIMIT = 100
#: The cached topics a page of results shows: issues, comments, and projects (their names and
#: workflow states).
SEARCHED_TOPICS = ("issues", "comments", "projects")
#: Seconds a page of results stays cached. Its versions are checked on every read, so this only
#: bounds how long a question nobody asks again keeps its room.
CACHE_SECONDS = 60
#: Part of the cache keys: a new number whenever what ``_page_to_cache`` stores changes shape
#: (the keys carry ``EXCERPT_FORMAT`` too: a page's excerpts are used again after an edit).
_CACHE_FORMAT = 2


@dataclass(frozen=True)
class SearchHit:
    """One result, with what a result shows: read in the search's own statement."""

    issue_id: uuid.UUID
    #: Higher is better; comparable only within one page of results.
    rank: float
    #: The matching excerpt: user text escaped, matched words in ``<mark>``.
    snippet: Markup
    project_key: str
    number: int
    title: str
    state: str
    #: On PostgreSQL, the version of the issue's searched text the excerpt was made from
    #: (``search_sql._STAMP``).
    stamp: str | None = field(default=None, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """The issue's reference (``WEB-42``), as ``Issue.ref``."""
        return f"{self.project_key}-{self.number}"


class ShownHit(NamedTuple):
    """A result as the search page shows it (the excerpt escaped, its matches marked)."""

    ref: str
    title: str
    state: str
    snippet: Markup

    @property
    def project_key(self) -> str:
        return self.ref.rsplit("-", 1)[0]


def by_project(hits: list[ShownHit]) -> list[tuple[str, list[ShownHit]]]:
    """The hits grouped by project key, each group in the order of its best hit, best first."""
    groups: dict[str, list[ShownHit]] = {}
    for hit in hits:
        groups.setdefault(hit.project_key, []).append(hit)
    return list(groups.items())


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit] = field(default_factory=list)
    #: Matching issues in the tenant (all pages).
    total: int = 0
    offset: int = 0

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.hits) < self.total

    @property
    def issue_ids(self) -> list[uuid.UUID]:
        return [hit.issue_id for hit in self.hits]


def search_issues(query: str, *, project_id=None, limit: int = 20, offset: int = 0) -> SearchPage:
    """The current tenant's issues matching ``query``, best first; raises ``TenantNotSet``.

    ``project_id`` narrows the search to one project (an id that is not a UUID finds nothing).
    One statement reads the page of hits with what each shows (another counts the matches when
    ``offset`` is past the last of them); the excerpts come with it on SQLite, and on PostgreSQL
    from the cache or one more statement (``search_excerpts.postgres_excerpts``).
    """
    return _search(query, project_id=project_id, limit=limit, offset=offset)


def _search(
    query: str, *, project_id, limit: int, offset: int, earlier: SearchPage | None = None
) -> SearchPage:
    """``search_issues``. On PostgreSQL, given ``earlier`` (the same question's page of results as
    it was last read, see ``cached_search_issues``), the statement that reads the page also makes
    the excerpts of the hits whose text is not the one ``earlier`` shows, and no other round trip
    is needed (``POSTGRES_SEARCH_EXCERPTING``)."""
    tenant_id = require_tenant()
    limit, offset = _bounded(limit, offset)
    query = clean_query(query)
    terms = parse_query(query)
    if not any(not term.excluded for term in terms):
        return SearchPage(offset=offset)
    if project_id is not None:
        try:
            project_id = uuid.UUID(str(project_id))
        except ValueError:
            return SearchPage(offset=offset)

    marks = Marks.new()
    session = db.session
    postgres = session.get_bind().dialect.name == "postgresql"
    kept: dict[str, str] = {}
    if postgres and earlier is not None:
        # The excerpts ``earlier`` shows, each under the version of the text it was made from.
        kept = {f"{hit.issue_id} {hit.stamp}": str(hit.snippet) for hit in earlier.hits if hit.stamp}
        statement = POSTGRES_SEARCH_EXCERPTING[project_id is not None]
        params = {"query": tsquery_text(terms), "known": list(kept), **marks.headline_params()}
    elif postgres:
        statement = POSTGRES_SEARCH[project_id is not None]
        params = {"query": tsquery_text(terms)}
    else:
        statement = SQLITE_SEARCH[project_id is not None]
        params = {"match": fts5_expression(terms), "start": marks.start, "stop": marks.stop}
    params.update(tenant_id=tenant_id, limit=limit, offset=offset)
    if project_id is not None:
        params["project_id"] = project_id

    rows = session.execute(statement, params).all()
    if not rows and offset:
        # Past the last page: count the matches with the first one.
        first = session.execute(statement, {**params, "limit": 1, "offset": 0}).all()
        return SearchPage(total=first[0].total if first else 0, offset=offset)
    if postgres and earlier is not None:
        snippets = excerpts_made_or_kept(rows, marks, kept)
    elif postgres:
        snippets = postgres_excerpts(tenant_id, tsquery_text(terms), rows)
    else:
        snippets = [marks.to_markup(row.snippet or "") for row in rows]
    stamps = [row.stamp for row in rows] if postgres else [None] * len(rows)
    hits = [
        SearchHit(
            row.issue_id, float(row.score), snippet, row.project_key, row.number, row.title, row.state, stamp
        )
        for row, snippet, stamp in zip(rows, snippets, stamps, strict=True)
    ]
    return SearchPage(hits=hits, total=rows[0].total if rows else 0, offset=offset)


def cached_search_issues(query: str, *, project_id=None, limit: int = 20, offset: int = 0) -> SearchPage:
    """``search_issues``, answered from the cache while nothing it searched has changed.

    Every role of an organization sees all of its issues (``work.view``), so a page of results
    is the same for each member: it is cached once per tenant and question (words, project,
    page), stored with the versions of ``SEARCHED_TOPICS`` it was read at, so that the page
    and the current versions come back in one round trip and an edit shows at once. When the
    versions have moved, the page read last still serves for its excerpts: on PostgreSQL each of
    its hits carries the version of the text its excerpt was made from, and the search makes
    only the excerpts of the hits whose text is another (``_search``).
    """
    limit, offset = _bounded(limit, offset)
    query = clean_query(query)
    if not any(not term.excluded for term in parse_query(query)):
        return search_issues(query, project_id=project_id, limit=limit, offset=offset)
    question = json.dumps([query, str(project_id or ""), limit, offset])
    digest = hashlib.sha256(question.encode()).hexdigest()[:32]
    key = cache.tenant_key("search", f"{_CACHE_FORMAT}.{EXCERPT_FORMAT}", digest)
    *current, stored = cache.versions(*SEARCHED_TOPICS, along=key)
    earlier = None
    if isinstance(stored, tuple) and len(stored) == 2:
        earlier = _page_from_cache(stored[1])
        if stored[0] == tuple(current):
            return earlier
    # The versions were read before the data: a change committed meanwhile moves them again.
    page = _search(query, project_id=project_id, limit=limit, offset=offset, earlier=earlier)
    cache.store(key, (tuple(current), _page_to_cache(page)), timeout=CACHE_SECONDS)
    return page


def _bounded(limit, offset) -> tuple[int, int]:
    return max(1, min(int(limit), MAX_LIMIT)), max(0, int(offset))


def _page_to_cache(page: SearchPage) -> tuple:
    """The page as plain values (no classes of this module in what the cache keeps)."""
    hits = tuple(
        (
            hit.issue_id,
            hit.rank,
            str(hit.snippet),
            hit.project_key,
            hit.number,
            hit.title,
            hit.state,
            hit.stamp,
        )
        for hit in page.hits
    )
    return (page.total, page.offset, hits)


def _page_from_cache(value: tuple) -> SearchPage:
    total, offset, hits = value
    return SearchPage(
        hits=[  # the excerpts were escaped when stored
            SearchHit(issue_id, rank, Markup(snippet), key, number, title, state, stamp)
            for issue_id, rank, snippet, key, number, title, state, stamp in hits
        ],
        total=total,
        offset=offset,
    )
