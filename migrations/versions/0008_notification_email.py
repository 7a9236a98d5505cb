"""Notification email: each member chooses, per organization, how notifications are mailed.

memberships.email_notifications is 'immediately' (the default, also for existing members),
'daily' (one digest a day) or 'off'.
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'


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
