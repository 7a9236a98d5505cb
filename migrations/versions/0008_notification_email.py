"""Notification email: each member chooses, per organization, how notifications are mailed.

memberships.email_notifications is 'immediately' (the default, also for existing members),
'daily' (one digest a day) or 'off'.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 13:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_notifications', sa.String(length=16), server_default='immediately', nullable=False))
        batch_op.create_check_constraint(
            op.f('ck_memberships_email_notifications_known'),
            "email_notifications IN ('immediately', 'daily', 'off')",
        )


def downgrade():
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_memberships_email_notifications_known'), type_='check')
        batch_op.drop_column('email_notifications')
