"""PostgreSQL: the search vectors move to their own table, which a search reads through its GIN index.

Under row-level security the planner cannot use a GIN index for ``@@`` (the operator is not
leakproof), so a search of ``issues.search_vector`` read every issue of the tenant. The vectors
now live in ``issue_search`` (one row per issue: ``tenant_id``, ``issue_id``, ``search_vector``,
GIN-indexed), and the app finds matches only through ``issue_search_matches(tsquery)``:

- a SECURITY DEFINER function owned by the schema owner, with a fixed ``search_path``, that
  returns the matching issue ids and their rank for the tenant of the connection's
  ``app.tenant_id`` setting, the one row-level security reads. The tenant is never a parameter:
  with no tenant set it finds nothing, whatever ``app.unscoped`` says. Only the roles that may
  read ``issues`` may call it (``flask grant-app-role`` grants it to a new app role).
- ``issue_search`` enables row-level security (the tenant policy) without forcing it: the app's
  role, which writes the vectors through the triggers, sees and writes only the current tenant's
  rows; the owner, which runs the function, is not held back by the policy, so the planner may
  use the GIN index. The app looks for matches only through the function; it reads the rows
  of a page of results by key, under the policy, to choose the text of their excerpts.

Its primary key is ``(issue_id, tenant_id)``: no index leads with ``tenant_id``, so the GIN index
is the only way to a tenant's matches, whatever the tenant's share of the table.

The triggers of 0004 now write ``issue_search``: after an issue's title or description is
written, and after a comment is added, edited or deleted. A comment no longer rewrites its issue
row. ``issues.search_vector`` and its index are dropped. SQLite is unchanged (FTS5, 0004).
"""
from alembic import op

revision = '0012'
down_revision = '0011'

_TENANT_PREDICATE = (
    "current_setting('app.unscoped', true) = 'on' "
    "OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
)

UPGRADE = (
    """
    CREATE TABLE issue_search (
        tenant_id uuid NOT NULL,
        issue_id uuid NOT NULL,
        search_vector tsvector NOT NULL,
        CONSTRAINT pk_issue_search PRIMARY KEY (issue_id, tenant_id),
        CONSTRAINT fk_issue_search_tenant_id_issue_id_issues FOREIGN KEY (tenant_id, issue_id)
            REFERENCES issues (tenant_id, id) ON DELETE CASCADE
    )
    """,
    # Migrations run unscoped: every tenant's vectors are copied.
    """
    INSERT INTO issue_search (tenant_id, issue_id, search_vector)
    SELECT tenant_id, id, coalesce(search_vector, issue_search_vector(tenant_id, id, title, description))
    FROM issues
    """,
    "CREATE INDEX ix_issue_search_vector ON issue_search USING gin (search_vector)",
    "ALTER TABLE issue_search ENABLE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON issue_search USING ({_TENANT_PREDICATE}) WITH CHECK ({_TENANT_PREDICATE})",
    "DROP TRIGGER issues_search_vector ON issues",
    "DROP INDEX ix_issues_search_vector",
    "ALTER TABLE issues DROP COLUMN search_vector",
    """
    CREATE OR REPLACE FUNCTION issues_search_vector_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO issue_search (tenant_id, issue_id, search_vector)
        VALUES (NEW.tenant_id, NEW.id, issue_search_vector(NEW.tenant_id, NEW.id, NEW.title, NEW.description))
        ON CONFLICT (issue_id, tenant_id) DO UPDATE SET search_vector = EXCLUDED.search_vector;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER issues_search_vector AFTER INSERT OR UPDATE OF title, description ON issues
    FOR EACH ROW EXECUTE FUNCTION issues_search_vector_trigger()
    """,
    """
    CREATE OR REPLACE FUNCTION comments_search_vector_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            UPDATE issue_search s SET search_vector = issue_search_vector(i.tenant_id, i.id, i.title, i.description)
            FROM issues i
            WHERE i.tenant_id = OLD.tenant_id AND i.id = OLD.issue_id
              AND s.tenant_id = i.tenant_id AND s.issue_id = i.id;
        END IF;
        IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE'
                AND (NEW.tenant_id, NEW.issue_id) IS DISTINCT FROM (OLD.tenant_id, OLD.issue_id)) THEN
            UPDATE issue_search s SET search_vector = issue_search_vector(i.tenant_id, i.id, i.title, i.description)
            FROM issues i
            WHERE i.tenant_id = NEW.tenant_id AND i.id = NEW.issue_id
              AND s.tenant_id = i.tenant_id AND s.issue_id = i.id;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    # The tenant comes from the setting row-level security reads, never from the caller.
    """
    CREATE FUNCTION issue_search_matches(p_query tsquery)
    RETURNS TABLE (issue_id uuid, score real)
    LANGUAGE sql STABLE SECURITY DEFINER ROWS 100
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT s.issue_id, ts_rank_cd(s.search_vector, p_query)
        FROM public.issue_search s
        WHERE s.search_vector @@ p_query
          AND s.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
    $$
    """,
    # Callable by the roles that may read issues (under the same policy), not by every role.
    "REVOKE EXECUTE ON FUNCTION issue_search_matches(tsquery) FROM PUBLIC",
    """
    DO $$
    DECLARE reader text;
    BEGIN
        FOR reader IN
            SELECT rolname FROM pg_roles
            WHERE rolname <> current_user AND has_table_privilege(oid, 'issues', 'SELECT')
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION issue_search_matches(tsquery) TO %I', reader);
        END LOOP;
    END
    $$
    """,
)

DOWNGRADE = (
    "DROP FUNCTION issue_search_matches(tsquery)",
    "DROP TRIGGER issues_search_vector ON issues",
    "ALTER TABLE issues ADD COLUMN search_vector tsvector",
    """
    UPDATE issues i SET search_vector = s.search_vector
    FROM issue_search s WHERE s.tenant_id = i.tenant_id AND s.issue_id = i.id
    """,
    "DROP TABLE issue_search",
    """
    CREATE OR REPLACE FUNCTION issues_search_vector_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector := issue_search_vector(NEW.tenant_id, NEW.id, NEW.title, NEW.description);
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER issues_search_vector BEFORE INSERT OR UPDATE OF title, description ON issues
    FOR EACH ROW EXECUTE FUNCTION issues_search_vector_trigger()
    """,
    """
    CREATE OR REPLACE FUNCTION comments_search_vector_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
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
    "CREATE INDEX ix_issues_search_vector ON issues USING gin (search_vector)",
)


def upgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    for statement in UPGRADE:
        op.execute(statement)


def downgrade():
    if op.get_context().dialect.name != "postgresql":
        return
    for statement in DOWNGRADE:
        op.execute(statement)
