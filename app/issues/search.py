"""Full-text search over the current tenant's issues: one interface, two engines.

``search_issues(query)`` finds issues by their title, description and comments, best match
first (title matches outrank description matches, which outrank comment matches), then
newest. The database keeps the index current (migrations 0004 and 0012):

- PostgreSQL: the table ``issue_search`` (one tsvector per issue, 'english' configuration,
  GIN-indexed; migration 0012), matched with ``websearch_to_tsquery``, ranked with
  ``ts_rank_cd``, excerpted with ``ts_headline``.
- SQLite: the FTS5 table ``issue_search`` (porter stemming), queried with a MATCH expression
  built here from quoted terms, ranked with ``bm25()``, excerpted with ``snippet()``.

Both understand the same query language, the one of web search boxes: words (all must
match, in any form English stemming relates: "deploying" finds "deployed"), ``"a phrase"``,
``this or that``, and ``-word`` to exclude. There is no prefix matching. Any input is safe:
it can never be a syntax error, and a query with nothing to look for finds nothing.

One statement reads a page of hits with all a result shows (reference, title, state), whatever
the number of hits; on SQLite it makes the excerpts too. On PostgreSQL, where making an excerpt
(``ts_headline``) is most of a search's time, each is kept per issue, question and version of
the issue's text, and a second statement makes only those not kept. ``cached_search_issues``
keeps each page of results in the cache for a short time, per tenant and question, checked
against the versions of the issues and comments on every read; once they have moved (after an
edit), the page read before lends its excerpts, each with the version of the text it was made
from, and the one statement that reads the page makes the others (the edited issue's).

The statements are raw SQL, which the ORM's tenant scoping does not rewrite: each filters on
the current tenant explicitly, and on PostgreSQL row-level security applies as well.
Under row-level security PostgreSQL does not use a GIN index for ``@@`` (the operator is not
marked leakproof), so on PostgreSQL the matches come from ``issue_search_matches(tsquery)``, a
SECURITY DEFINER function of the schema owner that reads ``issue_search`` through its GIN index
for the tenant of the connection's ``app.tenant_id`` setting (the one row-level security reads;
with none it finds nothing). The statement then reads the matching issues by primary key, under
row-level security and the explicit tenant filter: a search costs what its matches cost, not
what the tenant's issues do.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

from markupsafe import Markup, escape
from sqlalchemy import ARRAY, Float, Integer, String, Uuid, bindparam, text

from app.core import cache
from app.core.tenancy import require_tenant
from app.extensions import cache as app_cache
from app.extensions import db

#: Longest query looked at (characters); the rest is ignored.
MAX_QUERY_LENGTH = 256
#: At most this many terms of a query are used.
MAX_TERMS = 24
#: Largest page size a caller may ask for.
MAX_LIMIT = 100
#: Characters of a description and of an issue's comments that are indexed (see migration 0004)
#: and excerpted.
INDEXED_CHARACTERS = 100_000
#: The cached topics a page of results shows: issues (with their projects' keys) and comments.
SEARCHED_TOPICS = ("issues", "comments")
#: Seconds a page of results stays cached. Its versions are checked on every read, so this only
#: bounds how long a question nobody asks again keeps its room.
CACHE_SECONDS = 60
#: Part of the cache keys: a new number whenever what ``_page_to_cache`` stores changes shape
#: (the keys carry ``_EXCERPT_FORMAT`` too: a page's excerpts are used again after an edit).
_CACHE_FORMAT = 2
#: Seconds an issue's excerpt for a question is kept (it is kept per version of the issue's text).
EXCERPT_SECONDS = 3600
#: Part of the excerpts' keys: a new number whenever the way excerpts are made changes.
_EXCERPT_FORMAT = 1


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
    #: On PostgreSQL, the version of the issue's searched text the excerpt was made from (``_STAMP``).
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
    from the cache or one more statement (``_postgres_excerpts``).
    """
    return _search(query, project_id=project_id, limit=limit, offset=offset)


def _search(
    query: str, *, project_id, limit: int, offset: int, earlier: SearchPage | None = None
) -> SearchPage:
    """``search_issues``. On PostgreSQL, given ``earlier`` (the same question's page of results as
    it was last read, see ``cached_search_issues``), the statement that reads the page also makes
    the excerpts of the hits whose text is not the one ``earlier`` shows, and no other round trip
    is needed (``_POSTGRES_SEARCH_EXCERPTING``)."""
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

    marks = _Marks.new()
    session = db.session
    postgres = session.get_bind().dialect.name == "postgresql"
    kept: dict[str, str] = {}
    if postgres and earlier is not None:
        # The excerpts ``earlier`` shows, each under the version of the text it was made from.
        kept = {f"{hit.issue_id} {hit.stamp}": str(hit.snippet) for hit in earlier.hits if hit.stamp}
        statement = _POSTGRES_SEARCH_EXCERPTING[project_id is not None]
        params = {"query": query, "known": list(kept), **marks.headline_params()}
    elif postgres:
        statement = _POSTGRES_SEARCH[project_id is not None]
        params = {"query": query}
    else:
        statement = _SQLITE_SEARCH[project_id is not None]
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
        snippets = _excerpts_made_or_kept(rows, marks, kept)
    elif postgres:
        snippets = _postgres_excerpts(tenant_id, query, rows)
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


def _excerpt_key(question: str, issue_id, stamp) -> str:
    """The key an issue's excerpt is kept under: per tenant, question (as PostgreSQL parsed it)
    and version of the issue's text."""
    digest = hashlib.sha256(question.encode()).hexdigest()[:32]
    return cache.tenant_key("excerpt", _EXCERPT_FORMAT, digest, issue_id, stamp)


def _excerpts_made_or_kept(rows, marks: _Marks, kept: dict[str, str]) -> list[Markup]:
    """The excerpts of rows read by ``_POSTGRES_SEARCH_EXCERPTING``: those it made (kept for later
    searches, as ``_postgres_excerpts`` keeps them), and, where it made none, those in ``kept``."""
    excerpts, fresh = [], {}
    for row in rows:
        if row.snippet is None:  # the text is the one the kept excerpt was made from
            excerpts.append(Markup(kept.get(f"{row.issue_id} {row.stamp}", "")))  # escaped when made
            continue
        excerpt = marks.to_markup(row.snippet, html_escaped=True)
        fresh[_excerpt_key(row.question, row.issue_id, row.stamp)] = str(excerpt)
        excerpts.append(excerpt)
    cache.store_many(fresh, timeout=EXCERPT_SECONDS)
    return excerpts


def _postgres_excerpts(tenant_id, query: str, rows) -> list[Markup]:
    """The excerpts of a page of hits (rows with ``issue_id``, ``stamp`` and ``question``), made by
    ``ts_headline`` only for the issues whose text changed since they were last made for this
    question: ``ts_headline`` parses and stems all the text it is given, most of a search's time.

    An excerpt is kept per issue, question (the query as PostgreSQL parsed it, so "Thumbnails"
    and "thumbnail" share theirs) and **stamp**: the row version of the issue's ``issue_search``
    row (``xmin`` and ``ctid``), which the triggers rewrite whenever the issue's title or
    description or any of its comments is written. So after an edit only the edited issue is
    excerpted again. An excerpt made in a later snapshot than the page's rows is kept under the
    stamp it was made from.
    """
    if not rows:
        return []
    question = rows[0].question

    def key(issue_id, stamp) -> str:
        return _excerpt_key(question, issue_id, stamp)

    kept = app_cache.get_many(*(key(row.issue_id, row.stamp) for row in rows))
    missing = [row.issue_id for row, excerpt in zip(rows, kept, strict=True) if excerpt is None]
    made: dict[uuid.UUID, str] = {}
    if missing:
        marks = _Marks.new()
        params = {"query": query, **marks.headline_params()}
        found = db.session.execute(_POSTGRES_EXCERPTS, {**params, "tenant_id": tenant_id, "ids": missing})
        fresh = {}
        for row in found:
            made[row.issue_id] = str(marks.to_markup(row.snippet or "", html_escaped=True))
            fresh[key(row.issue_id, row.stamp)] = made[row.issue_id]
        cache.store_many(fresh, timeout=EXCERPT_SECONDS)
    return [
        Markup(excerpt if excerpt is not None else made.get(row.issue_id, ""))  # escaped when made
        for row, excerpt in zip(rows, kept, strict=True)
    ]


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
    key = cache.tenant_key("search", f"{_CACHE_FORMAT}.{_EXCERPT_FORMAT}", digest)
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


# --- the query language ----------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A word or a quoted phrase of a query, as the words the tokenizers will see."""

    words: tuple[str, ...]
    excluded: bool = False
    #: Joined to the term before it with OR.
    alternative: bool = False


#: PostgreSQL's english stop words (the Snowball list). The 'english' configuration drops them
#: from queries; FTS5 indexes every word, so the query parser drops them for both engines alike.
_STOP_WORDS_TEXT = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
her hers herself it its itself they them their theirs themselves what which who whom this that
these those am is are was were be been being have has had having do does did doing a an the and
but if or because as until while of at by for with about against between into through during
before after above below to from up down in out on off over under again further then once here
there when where why how all any both each few more most other some such no nor not only own
same so than too very s t can will just don should now
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"[^\W_]+")
#: Control characters (NUL among them) and lone surrogates: no database driver takes them all.
_UNSAFE_CHARACTER_CATEGORIES = {"Cc", "Cs"}


def clean_query(query) -> str:
    """The query as the engines see it: bounded in length, without control characters."""
    query = str(query or "")[:MAX_QUERY_LENGTH]
    return "".join(" " if unicodedata.category(ch) in _UNSAFE_CHARACTER_CATEGORIES else ch for ch in query)


def parse_query(query: str) -> list[Term]:
    """Read a web-search style query: words, "phrases", ``or`` and ``-excluded`` terms.

    Punctuation separates words; a token of several words (``e-mail``) is a phrase.
    """
    terms: list[Term] = []
    pending_or = False
    for match in _TOKEN.finditer(query):
        negation, phrase, word = match.groups()
        if word is not None:
            if word.lower() == "or":
                pending_or = bool(terms) and not terms[-1].excluded
                continue
            negation = "-" if word.startswith("-") else ""
            phrase = word.lstrip("-")
        words = tuple(_WORD.findall(phrase))
        if all(w.lower() in STOP_WORDS for w in words):
            continue  # nothing to look for (a phrase keeps its stop words: FTS5 matches them)
        excluded = bool(negation)
        terms.append(Term(words, excluded=excluded, alternative=pending_or and not excluded))
        pending_or = False
        if len(terms) == MAX_TERMS:
            break
    return terms


def fts5_expression(terms: list[Term]) -> str:
    """An FTS5 MATCH expression for the terms: every term a quoted string, never an operator."""
    groups: list[list[str]] = []
    excluded = []
    for term in terms:
        quoted = '"' + " ".join(term.words).replace('"', '""') + '"'
        if term.excluded:
            excluded.append(quoted)
        elif term.alternative and groups:
            groups[-1].append(quoted)
        else:
            groups.append([quoted])
    expression = " AND ".join("(" + " OR ".join(group) + ")" for group in groups)
    return "(" + expression + ")" + "".join(f" NOT {term}" for term in excluded)


# --- excerpts --------------------------------------------------------------------------------

_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


@dataclass(frozen=True)
class _Marks:
    """Sentinels the engines put around matched words, random per search.

    User text cannot contain them by chance, so after escaping everything, exactly the
    sentinels become ``<mark>`` tags. ``edge`` is a word ts_headline finds at both ends of
    the text, so that it keeps the punctuation there (``[API] …``, ``Vec<String>``).
    """

    start: str
    stop: str
    edge: str

    @classmethod
    def new(cls) -> _Marks:
        nonce = secrets.token_hex(16)
        return cls(f"S{nonce}", f"E{nonce}", f"X{nonce}")

    def headline_options(self) -> str:
        return (
            f"StartSel={self.start}, StopSel={self.stop}, MaxWords=30, MinWords=12, "
            'MaxFragments=2, FragmentDelimiter=" … "'
        )

    def headline_params(self) -> dict[str, str]:
        """The parameters of ``_headline`` (PostgreSQL's excerpts)."""
        return {"headline_options": self.headline_options(), "edge": self.edge}

    def to_markup(self, excerpt: str, *, html_escaped: bool = False) -> Markup:
        if html_escaped:
            excerpt = _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], excerpt)
        escaped = str(escape(" ".join(excerpt.replace(self.edge, " ").split())))
        escaped = escaped.replace(self.start, "<mark>").replace(self.stop, "</mark>")
        return Markup(escaped)  # every character of user text was escaped above


# --- statements --------------------------------------------------------------------------------


def _typed(statement: str, by_project: bool, **more_columns):
    uuids = [bindparam("tenant_id", type_=Uuid())]
    if by_project:
        uuids.append(bindparam("project_id", type_=Uuid()))
    return (
        text(statement)
        .bindparams(*uuids)
        .columns(
            issue_id=Uuid(),
            score=Float(),
            total=Integer(),
            snippet=String(),
            project_key=String(),
            number=Integer(),
            title=String(),
            state=String(),
            **more_columns,
        )
    )


#: Whether the title and the description (weights A and B) of an issue's search row ``s`` match.
_TITLE_AND_DESCRIPTION_MATCH = (
    "ts_filter(s.search_vector, '{a,b}') @@ websearch_to_tsquery('english', :query)"
)

#: The row version of an issue's search row, which changes whenever its searched text does.
_STAMP = (
    "(SELECT s.xmin::text || s.ctid::text FROM issue_search s"
    " WHERE s.tenant_id = :tenant_id AND s.issue_id = {})"
)


def _headline(issue: str, title: str, description: str, title_and_description_match: str = "") -> str:
    """SQL for the excerpt of the issue whose id, title and description are the expressions given
    (and, if given, whether its vector's title and description match the query by themselves).

    ts_headline reads the text HTML-escaped (its parser would drop anything that looks like a
    tag) and between two edge words (it drops punctuation before the first word and after the
    last). It parses all the text it is given: the comments are added only when the title and
    the description (weights A and B of the vector) do not match the query by themselves.
    """
    title_and_description_match = title_and_description_match or (
        f"(SELECT {_TITLE_AND_DESCRIPTION_MATCH} FROM issue_search s"
        f" WHERE s.tenant_id = :tenant_id AND s.issue_id = {issue})"
    )
    return f"""ts_headline('english',
                   concat_ws(' ', CAST(:edge AS text), replace(replace(replace(concat_ws(E'\\n',
                       {title},
                       left({description}, {INDEXED_CHARACTERS}),
                       CASE WHEN {title_and_description_match}
                            THEN NULL
                            ELSE (SELECT left(string_agg(c.body, E'\\n' ORDER BY c.created_at, c.id),
                                              {INDEXED_CHARACTERS})
                                  FROM comments c
                                  WHERE c.tenant_id = :tenant_id AND c.issue_id = {issue})
                       END
                   ), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), CAST(:edge AS text)),
                   websearch_to_tsquery('english', :query), :headline_options)"""


def _postgres_search(by_project: bool, excerpting: bool = False):
    # The matches come from the owner's function (through the GIN index); the page of them is
    # chosen by rank, then newest, and its issues read by key. Excerpts are made apart
    # (``_postgres_excerpts``), only for the hits whose text changed; or, ``excerpting``, here,
    # for each hit whose "<id> <stamp>" is not among the ``known`` ones (a CASE evaluates its
    # ELSE, and the subqueries in it, only for the rows that take it).
    snippet, stamp, search_row = "", _STAMP.format("page.id"), ""
    if excerpting:  # the page's search rows read once, for their stamps and the excerpts made
        description = "(SELECT d.description FROM issues d WHERE d.tenant_id = :tenant_id AND d.id = page.id)"
        headline = _headline("page.id", "page.title", description, _TITLE_AND_DESCRIPTION_MATCH)
        stamp = "s.xmin::text || s.ctid::text"
        search_row = "LEFT JOIN issue_search s ON s.tenant_id = :tenant_id AND s.issue_id = page.id"
        snippet = f""",
               CASE WHEN CAST(page.id AS text) || ' ' || {stamp} = ANY(CAST(:known AS text[]))
                    THEN NULL
                    ELSE {headline}
               END AS snippet"""
    statement = _typed(
        f"""
        SELECT page.id AS issue_id, page.score AS score, page.total AS total,
               p.key AS project_key, page.number AS number, page.title AS title, page.state AS state,
               {stamp} AS stamp,
               (SELECT CAST(websearch_to_tsquery('english', :query) AS text)) AS question{snippet}
        FROM (
            SELECT i.tenant_id, i.id, i.project_id, i.number, i.title, i.state,
                   i.created_at, m.score AS score, count(*) OVER () AS total
            FROM issue_search_matches(websearch_to_tsquery('english', :query)) AS m
            JOIN issues i ON i.tenant_id = :tenant_id AND i.id = m.issue_id
            {"WHERE i.project_id = :project_id" if by_project else ""}
            ORDER BY m.score DESC, i.created_at DESC, i.id DESC
            LIMIT :limit OFFSET :offset
        ) AS page
        JOIN projects p ON p.tenant_id = :tenant_id AND p.id = page.project_id
        {search_row}
        ORDER BY page.score DESC, page.created_at DESC, page.id DESC
    """,
        by_project,
        stamp=String(),
        question=String(),
    )
    return statement.bindparams(bindparam("known", type_=ARRAY(String()))) if excerpting else statement


def _excerpts_statement():
    return (
        text(
            f"""
        SELECT i.id AS issue_id, {_STAMP.format("i.id")} AS stamp,
               {_headline("i.id", "i.title", "i.description")} AS snippet
        FROM issues i
        WHERE i.tenant_id = :tenant_id AND i.id IN :ids
    """
        )
        .bindparams(
            bindparam("tenant_id", type_=Uuid()),
            bindparam("ids", type_=Uuid(), expanding=True),
        )
        .columns(issue_id=Uuid(), stamp=String(), snippet=String())
    )


def _sqlite_search(by_project: bool):
    # bm25() and snippet() only work next to the MATCH they belong to: rank the matches,
    # choose the page, then excerpt the page's rows. bm25 is lower for better matches;
    # weights: tenant_id, issue_id (not indexed), title, description, comments.
    return _typed(
        f"""
        WITH matches AS MATERIALIZED (
            SELECT rowid AS search_row, tenant_id, issue_id,
                   -bm25(issue_search, 0.0, 0.0, 10.0, 4.0, 1.0) AS score
            FROM issue_search
            WHERE issue_search MATCH :match AND tenant_id = :tenant_id
        ), page AS MATERIALIZED (
            SELECT m.search_row, m.issue_id, m.score, i.project_id, i.number, i.title, i.state, i.created_at,
                   count(*) OVER () AS total
            FROM matches m
            JOIN issues i ON i.tenant_id = m.tenant_id AND i.id = m.issue_id
            WHERE i.tenant_id = :tenant_id
              {"AND i.project_id = :project_id" if by_project else ""}
            ORDER BY m.score DESC, i.created_at DESC, i.id DESC
            LIMIT :limit OFFSET :offset
        )
        SELECT page.issue_id AS issue_id, page.score AS score, page.total AS total,
               p.key AS project_key, page.number AS number, page.title AS title, page.state AS state,
               snippet(issue_search, -1, :start, :stop, '…', 24) AS snippet
        FROM page
        JOIN issue_search ON issue_search.rowid = page.search_row
        JOIN projects p ON p.tenant_id = :tenant_id AND p.id = page.project_id
        WHERE issue_search MATCH :match
        ORDER BY page.score DESC, page.created_at DESC, page.issue_id DESC
    """,
        by_project,
    )


_POSTGRES_SEARCH = {by_project: _postgres_search(by_project) for by_project in (False, True)}
_POSTGRES_SEARCH_EXCERPTING = {by_project: _postgres_search(by_project, True) for by_project in (False, True)}
_POSTGRES_EXCERPTS = _excerpts_statement()
_SQLITE_SEARCH = {by_project: _sqlite_search(by_project) for by_project in (False, True)}


# --- the schema the models do not describe ------------------------------------------------------

#: PostgreSQL's table of search vectors; SQLite's FTS5 table of the same name and its shadow tables.
_SEARCH_TABLES = {
    "issue_search",
    *(f"issue_search_{s}" for s in ("data", "idx", "content", "docsize", "config")),
}


def include_in_schema_comparison(name, type_, parent_names) -> bool:
    """Alembic ``include_name``: leave the search tables (migrations 0004, 0012) out of autogenerate.

    The database maintains them with triggers and only this module's SQL reads them, so the
    models do not declare them (and the ORM never loads a tsvector).
    """
    if type_ == "table":
        return name not in _SEARCH_TABLES
    return True
