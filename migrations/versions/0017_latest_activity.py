"""The overview's recent activity reads an organization's latest history and comments in the
order of an index: ``(tenant_id, created_at, id)`` on ``issue_activities`` and ``comments``.

Each is ``ORDER BY created_at DESC, id DESC LIMIT 15`` within the tenant; the only indexes led
with the issue, so every view after a change sorted all of an organization's history and
comments. Built concurrently on PostgreSQL (outside the migration's transaction), so the
release step blocks no write while the old code serves.
"""
from alembic import op

revision = '0017'
down_revision = '0016'

INDEXES = {
    'ix_issue_activities_tenant_created': 'issue_activities',
    'ix_comments_tenant_created': 'comments',
}


def upgrade():
    with op.get_context().autocommit_block():
        for name, table in INDEXES.items():
            op.create_index(name, table, ['tenant_id', 'created_at', 'id'], postgresql_concurrently=True)


def downgrade():
    with op.get_context().autocommit_block():
        for name, table in INDEXES.items():
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
