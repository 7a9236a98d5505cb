"""The inbox's All view reads a person's notifications in the order of an index:
``(tenant_id, user_id, created_at, id)``.

Its pages are ``ORDER BY created_at DESC, id DESC LIMIT 51`` after a cursor. The only index on
notifications led with ``read_at`` (for the unread view and the badge's count), so the All view
sorted all of a person's notifications for each page; with this one it reads a page's rows and
nothing more.
"""
from alembic import op

revision = '0015'
down_revision = '0014'


def upgrade():
    # On PostgreSQL the index is built concurrently, outside the migration's transaction, so the
    # release step never blocks new notifications while the old code serves (an expand step).
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_notifications_user_created',
            'notifications',
            ['tenant_id', 'user_id', 'created_at', 'id'],
            unique=False,
            postgresql_concurrently=True,
        )


def downgrade():
    op.drop_index('ix_notifications_user_created', table_name='notifications')
