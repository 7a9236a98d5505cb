"""Outbound webhooks: an organization's endpoints, the events sent and their deliveries.

``webhook_endpoints`` (URL, event types, the encrypted signing secret and the previous one during
a rotation), ``webhook_messages`` (each event's body as sent), ``webhook_deliveries`` (one message
to one endpoint, with its retry schedule) and ``webhook_attempts`` (each request and its answer)
are tenant tables with row-level security.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.core.database import disable_tenant_rls, enable_tenant_rls

revision = '0026'
down_revision = '0025'

TENANT_TABLES = ('webhook_endpoints', 'webhook_messages', 'webhook_deliveries', 'webhook_attempts')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _tenant_key(table):
    return (
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ['tenant_id'], ['organizations.id'], name=op.f(f'fk_{table}_tenant_id_organizations'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f(f'pk_{table}')),
    )


def _tenant_fk(table, column, parent):
    return sa.ForeignKeyConstraint(
        ['tenant_id', column], [f'{parent}.tenant_id', f'{parent}.id'],
        name=op.f(f'fk_{table}_tenant_id_{column}_{parent}'), ondelete='CASCADE',
    )


def upgrade():
    op.create_table('webhook_endpoints',
    *_tenant_key('webhook_endpoints'),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('event_types', JSON, nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('previous_secret', sa.Text(), nullable=True),
    sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_reason', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table('webhook_messages',
    *_tenant_key('webhook_messages'),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table('webhook_deliveries',
    *_tenant_key('webhook_deliveries'),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('message_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('redelivery_of_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    _tenant_fk('webhook_deliveries', 'endpoint_id', 'webhook_endpoints'),
    _tenant_fk('webhook_deliveries', 'message_id', 'webhook_messages'),
    )
    op.create_index('ix_webhook_deliveries_endpoint_created', 'webhook_deliveries', ['tenant_id', 'endpoint_id', 'created_at'])
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['status', 'next_attempt_at'])
    op.create_table('webhook_attempts',
    *_tenant_key('webhook_attempts'),
    sa.Column('delivery_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('request_headers', JSON, nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_excerpt', sa.Text(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _tenant_fk('webhook_attempts', 'delivery_id', 'webhook_deliveries'),
    )
    op.create_index('ix_webhook_attempts_delivery', 'webhook_attempts', ['tenant_id', 'delivery_id', 'number'])
    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)


def downgrade():
    for table in TENANT_TABLES:
        disable_tenant_rls(op, table)
    for table in reversed(TENANT_TABLES):
        op.drop_table(table)
