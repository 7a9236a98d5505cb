"""Two-factor authentication: a person's TOTP secret (encrypted) and recovery codes, and the
organization's "require two-factor" policy (since when, and the grace days).

``two_factor`` and ``two_factor_recovery_codes`` are a person's, like ``users``: no tenant_id
and no row-level security. The app's role reaches them by the default privileges
``flask grant-app-role`` set.
"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'


def upgrade():
    op.create_table('two_factor',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_step', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_two_factor_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_two_factor'))
    )
    op.create_table('two_factor_recovery_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_two_factor_recovery_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_two_factor_recovery_codes')),
    sa.UniqueConstraint('user_id', 'code_hash', name=op.f('uq_two_factor_recovery_codes_user_id_code_hash'))
    )
    with op.batch_alter_table('two_factor_recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_two_factor_recovery_codes_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('two_factor_required_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('two_factor_grace_days', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('two_factor_grace_days')
        batch_op.drop_column('two_factor_required_at')
    op.drop_table('two_factor_recovery_codes')
    op.drop_table('two_factor')
