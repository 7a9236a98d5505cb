"""The organization's API: keys, and the answers kept for an ``Idempotency-Key``.

``api_keys`` (a hash of each key, its scopes, expiry and last use) and
``api_idempotent_requests`` (a POST's answer, kept a day) are tenant tables with row-level
security; a key is found by its hash before its organization is known, in an unscoped read.
``organizations.api_key_max_days`` is the longest a key of the organization may live.
"""
from alembic import op
import sqlalchemy as sa

from app.core.database import disable_tenant_rls, enable_tenant_rls

revision = '0025'
down_revision = '0024'

TENANT_TABLES = ('api_keys', 'api_idempotent_requests')


def _tenant_key(table):
    return (
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ['tenant_id'], ['organizations.id'], name=op.f(f'fk_{table}_tenant_id_organizations'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f(f'pk_{table}')),
    )


def upgrade():
    op.create_table('api_keys',
    *_tenant_key('api_keys'),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('scopes', sa.String(length=500), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('last_four', sa.String(length=4), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Uuid(), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_ip', sa.String(length=45), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_api_keys_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name=op.f('fk_api_keys_revoked_by_id_users'), ondelete='SET NULL'),
    sa.UniqueConstraint('tenant_id', 'token_hash', name=op.f('uq_api_keys_tenant_id_token_hash')),
    )
    op.create_index('ix_api_keys_token_hash', 'api_keys', ['token_hash'], unique=False)
    op.create_table('api_idempotent_requests',
    *_tenant_key('api_idempotent_requests'),
    sa.Column('api_key_id', sa.Uuid(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('body_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('response_headers', sa.String(length=2000), nullable=True),
    sa.Column('response_body', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(
        ['tenant_id', 'api_key_id'], ['api_keys.tenant_id', 'api_keys.id'],
        name=op.f('fk_api_idempotent_requests_tenant_id_api_keys'), ondelete='CASCADE'
    ),
    sa.UniqueConstraint(
        'tenant_id', 'api_key_id', 'idempotency_key',
        name=op.f('uq_api_idempotent_requests_tenant_id_api_key_id_idempotency_key')
    ),
    )
    op.create_index('ix_api_idempotent_requests_created_at', 'api_idempotent_requests', ['created_at'], unique=False)
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_key_max_days', sa.Integer(), server_default='365', nullable=False))
    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)


def downgrade():
    for table in TENANT_TABLES:
        disable_tenant_rls(op, table)
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('api_key_max_days')
    op.drop_index('ix_api_idempotent_requests_created_at', table_name='api_idempotent_requests')
    op.drop_table('api_idempotent_requests')
    op.drop_index('ix_api_keys_token_hash', table_name='api_keys')
    op.drop_table('api_keys')
