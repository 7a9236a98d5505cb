"""Board columns are read in the order of an index: ``(tenant_id, project_id, state, rank, id)``.

A column's cards are ``ORDER BY rank, id LIMIT n``. The index it replaces ended at ``rank``, so
each column needed a sort, and where the planner's statistics put fewer rows in the column than
it holds (the tenant's share of the table shrinks as organizations are added, and the tenant and
project are counted as independent), it chose to read the whole column and sort it rather than
the index's first entries. With ``id`` in the index the order is the query's: a column reads its
first cards and nothing more, whatever the statistics; the column counts read it alone.
"""
from alembic import op

revision = '0013'
down_revision = '0012'


def upgrade():
    # On PostgreSQL the index is built concurrently, outside the migration's transaction, so the
    # release step never blocks writes to issues while the old code serves (an expand step).
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_issues_tenant_id_project_id_state_rank_id',
            'issues',
            ['tenant_id', 'project_id', 'state', 'rank', 'id'],
            unique=False,
            postgresql_concurrently=True,
        )
        op.drop_index(
            'ix_issues_tenant_id_project_id_state_rank', table_name='issues', postgresql_concurrently=True
        )


def downgrade():
    op.create_index(
        'ix_issues_tenant_id_project_id_state_rank',
        'issues',
        ['tenant_id', 'project_id', 'state', 'rank'],
        unique=False,
    )
    op.drop_index('ix_issues_tenant_id_project_id_state_rank_id', table_name='issues')
