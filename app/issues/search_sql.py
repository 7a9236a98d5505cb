"""The statements of the search (``app.issues.search``), built once per process, and the search
tables the models do not describe.

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

from sqlalchemy import ARRAY, Float, Integer, String, Uuid, bindparam, text

#: Characters of a description and of an issue's comments that are indexed (see migration 0004)
#: and excerpted.
INDEXED_CHARACTERS = 100_000


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
_TITLE_AND_DESCRIPTION_MATCH = "ts_filter(s.search_vector, '{a,b}') @@ to_tsquery('english', :query)"

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
                   to_tsquery('english', :query), :headline_options)"""


def _postgres_search(by_project: bool, excerpting: bool = False):
    # The matches come from the owner's function (through the GIN index); the page of them is
    # chosen by rank, then newest, and its issues read by key. Excerpts are made apart
    # (``search_excerpts.postgres_excerpts``), only for the hits whose text changed; or, ``excerpting``, here,
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
               (SELECT CAST(to_tsquery('english', :query) AS text)) AS question{snippet}
        FROM (
            SELECT i.tenant_id, i.id, i.project_id, i.number, i.title, i.state,
                   i.created_at, m.score AS score, count(*) OVER () AS total
            FROM issue_search_matches(to_tsquery('english', :query)) AS m
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


#: The statements by whether they search one project (``project_id``) or all.
POSTGRES_SEARCH = {by_project: _postgres_search(by_project) for by_project in (False, True)}
POSTGRES_SEARCH_EXCERPTING = {by_project: _postgres_search(by_project, True) for by_project in (False, True)}
POSTGRES_EXCERPTS = _excerpts_statement()
SQLITE_SEARCH = {by_project: _sqlite_search(by_project) for by_project in (False, True)}


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
