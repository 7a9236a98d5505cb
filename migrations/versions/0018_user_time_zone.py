"""Each person's time zone: ``users.time_zone``, an IANA name their pages and e-mails show times
in, set on the account page or guessed by the browser at sign-up; UTC for everyone until then.

Adding a column with a constant default is instant on PostgreSQL (no table rewrite), and the
old code, which never names the column, keeps working while it serves (an expand step).
"""
from alembic import op
import sqlalchemy as sa

revision = '0018'
down_revision = '0017'


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), server_default='UTC', nullable=False))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
