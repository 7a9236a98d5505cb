"""Saved views may be shared with the organization: saved_views.shared, false for every view
saved before (they stay personal). The table is a tenant table already under row-level security.
"""
from alembic import op
import sqlalchemy as sa

revision = '0019'
down_revision = '0018'


def upgrade():
    with op.batch_alter_table('saved_views', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shared', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('saved_views', schema=None) as batch_op:
        batch_op.drop_column('shared')
