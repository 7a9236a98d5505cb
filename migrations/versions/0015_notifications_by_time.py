"""The inbox's All view reads a person's notifications in the order of an index:
``(tenant_id, user_id, created_at, id)``.

Its pages are ``ORDER BY created_at DESC, id DESC LIMIT 51`` after a cursor. The only index on
notifications led with ``read_at`` (for the unread view and the badge's count), so the All view
sorted all of a person's notifications for each page; with this one it reads a page's rows and
nothing more.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 20:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_notifications_user_created',
        'notifications',
        ['tenant_id', 'user_id', 'created_at', 'id'],
        unique=False,
    )


def downgrade():
    op.drop_index('ix_notifications_user_created', table_name='notifications')
