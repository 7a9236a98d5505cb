"""Full-text search over issues: their title, description and comments, kept current by the database.

PostgreSQL: ``issues.search_vector`` (tsvector, 'english' configuration: stemmed, stop words
dropped) weights the title A, the description B and the comments C. A BEFORE trigger on
issues computes it when the title or description is written; an AFTER trigger on comments
recomputes it for the comment's issue. A GIN index (``ix_issues_search_vector``) covers it.
At most the first 100,000 characters of the description and of the joined comments are
indexed, which keeps every vector under PostgreSQL's 1 MB tsvector limit.

SQLite: an FTS5 table ``issue_search`` (one row per issue, porter stemming over unicode61)
holds a copy of the title, description and joined comments; triggers on issues and comments
keep it in sync.

Neither is described by the models: ``app.issues.search_sql.include_in_schema_comparison`` keeps them out
of autogenerate. On SQLite, a later migration that rebuilds ``issues`` or ``comments`` in
batch mode (copy, drop, rename) drops their triggers with the old table and must create them
again.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'


# --- PostgreSQL ----------------------------------------------------------------------------

POSTGRES_UPGRADE = (
    """
    CREATE FUNCTION issue_search_vector(p_tenant_id uuid, p_issue_id uuid, p_title text, p_description text)
    RETURNS tsvector LANGUAGE sql STABLE AS $$
        SELECT setweight(to_tsvector('english', coalesce(p_title, '')), 'A')
            || setweight(to_tsvector('english', left(coalesce(p_description, ''), 100000)), 'B')
            || setweight(to_tsvector('english', coalesce((
                   SELECT left(string_agg(c.body, E'\\n' ORDER BY c.created_at, c.id), 100000)
                   FROM comments c
                   WHERE c.tenant_id = p_tenant_id AND c.issue_id = p_issue_id
               ), '')), 'C')
    $$
    """,
    """
    CREATE FUNCTION issues_search_vector_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector := issue_search_vector(NEW.tenant_id, NEW.id, NEW.title, NEW.description);
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE FUNCTION comments_search_vector_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            UPDATE issues SET search_vector = issue_search_vector(tenant_id, id, title, description)
            WHERE tenant_id = OLD.tenant_id AND id = OLD.issue_id;
        END IF;
        IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE'
                AND (NEW.tenant_id, NEW.issue_id) IS DISTINCT FROM (OLD.tenant_id, OLD.issue_id)) THEN
            UPDATE issues SET search_vector = issue_search_vector(tenant_id, id, title, description)
            WHERE tenant_id = NEW.tenant_id AND id = NEW.issue_id;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER issues_search_vector BEFORE INSERT OR UPDATE OF title, description ON issues
    FOR EACH ROW EXECUTE FUNCTION issues_search_vector_trigger()
    """,
    """
    CREATE TRIGGER comments_search_vector AFTER INSERT OR DELETE OR UPDATE OF body, issue_id ON comments
    FOR EACH ROW EXECUTE FUNCTION comments_search_vector_trigger()
    """,
    # Existing rows (migrations run unscoped, so every tenant's issues are filled in).
    "UPDATE issues SET search_vector = issue_search_vector(tenant_id, id, title, description)",
)

POSTGRES_DOWNGRADE = (
    "DROP TRIGGER comments_search_vector ON comments",
    "DROP TRIGGER issues_search_vector ON issues",
    "DROP FUNCTION comments_search_vector_trigger()",
    "DROP FUNCTION issues_search_vector_trigger()",
    "DROP FUNCTION issue_search_vector(uuid, uuid, text, text)",
)


# --- SQLite --------------------------------------------------------------------------------


def _sqlite_comments_of(alias):
    """The joined comment bodies of ``alias``'s issue (NEW or OLD), oldest first."""
    return (
        f"(SELECT group_concat(body, char(10)) FROM (SELECT body FROM comments "
        f"WHERE tenant_id = {alias}.tenant_id AND issue_id = {alias}.issue_id "
        f"ORDER BY created_at, id))"
    )


def _sqlite_refresh_comments(alias):
    return (
        f"UPDATE issue_search SET comments = coalesce({_sqlite_comments_of(alias)}, '') "
        f"WHERE tenant_id = {alias}.tenant_id AND issue_id = {alias}.issue_id;"
    )


SQLITE_UPGRADE = (
    """
    CREATE VIRTUAL TABLE issue_search USING fts5(
        tenant_id UNINDEXED, issue_id UNINDEXED, title, description, comments,
        tokenize = 'porter unicode61'
    )
    """,
    """
    CREATE TRIGGER issues_search_insert AFTER INSERT ON issues BEGIN
        INSERT INTO issue_search (tenant_id, issue_id, title, description, comments)
        VALUES (NEW.tenant_id, NEW.id, NEW.title, NEW.description, '');
    END
    """,
    """
    CREATE TRIGGER issues_search_update AFTER UPDATE OF title, description ON issues BEGIN
        UPDATE issue_search SET title = NEW.title, description = NEW.description
        WHERE tenant_id = NEW.tenant_id AND issue_id = NEW.id;
    END
    """,
    """
    CREATE TRIGGER issues_search_delete AFTER DELETE ON issues BEGIN
        DELETE FROM issue_search WHERE tenant_id = OLD.tenant_id AND issue_id = OLD.id;
    END
    """,
    f"""
    CREATE TRIGGER comments_search_insert AFTER INSERT ON comments BEGIN
        {_sqlite_refresh_comments("NEW")}
    END
    """,
    f"""
    CREATE TRIGGER comments_search_update AFTER UPDATE OF body, issue_id ON comments BEGIN
        {_sqlite_refresh_comments("OLD")}
        {_sqlite_refresh_comments("NEW")}
    END
    """,
    f"""
    CREATE TRIGGER comments_search_delete AFTER DELETE ON comments BEGIN
        {_sqlite_refresh_comments("OLD")}
    END
    """,
    # Existing rows.
    """
    INSERT INTO issue_search (tenant_id, issue_id, title, description, comments)
    SELECT i.tenant_id, i.id, i.title, i.description, coalesce((
        SELECT group_concat(body, char(10)) FROM (
            SELECT c.body FROM comments c
            WHERE c.tenant_id = i.tenant_id AND c.issue_id = i.id
            ORDER BY c.created_at, c.id
        )
    ), '')
    FROM issues i
    """,
)

SQLITE_DOWNGRADE = (
    "DROP TRIGGER comments_search_delete",
    "DROP TRIGGER comments_search_update",
    "DROP TRIGGER comments_search_insert",
    "DROP TRIGGER issues_search_delete",
    "DROP TRIGGER issues_search_update",
    "DROP TRIGGER issues_search_insert",
    "DROP TABLE issue_search",
)


def upgrade():
    if op.get_context().dialect.name == "postgresql":
        op.add_column('issues', sa.Column('search_vector', postgresql.TSVECTOR(), nullable=True))
        for statement in POSTGRES_UPGRADE:
            op.execute(statement)
        op.create_index('ix_issues_search_vector', 'issues', ['search_vector'], unique=False, postgresql_using='gin')
    else:
        for statement in SQLITE_UPGRADE:
            op.execute(statement)


def downgrade():
    if op.get_context().dialect.name == "postgresql":
        op.drop_index('ix_issues_search_vector', table_name='issues', postgresql_using='gin')
        for statement in POSTGRES_DOWNGRADE:
            op.execute(statement)
        op.drop_column('issues', 'search_vector')
    else:
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
