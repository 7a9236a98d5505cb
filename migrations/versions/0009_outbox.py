"""The mail outbox: every mail to send, written in the transaction that caused it.

``outbox`` holds account mail (no organization); ``tenant_outbox`` the mail an
organization sends, a tenant table (tenant_id leads its key, row-level security applies).
"""
from alembic import op
import sqlalchemy as sa

from app.core.database import disable_tenant_rls, enable_tenant_rls

revision = '0009_outbox'
down_revision = '0008'


def _mail_columns():
    return [
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('recipient', sa.String(length=320), nullable=False),
        sa.Column('template', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('text_body', sa.Text(), nullable=False),
        sa.Column('html_body', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
    ]


def _status_known(table):
    return sa.CheckConstraint(
        "status IN ('pending', 'sending', 'sent', 'failed')", name=op.f(f'ck_{table}_status_known')
    )


def upgrade():
    op.create_table('outbox',
    *_mail_columns(),
    _status_known('outbox'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    op.create_index('ix_outbox_status_due_at', 'outbox', ['status', 'due_at'], unique=False)

    op.create_table('tenant_outbox',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    *_mail_columns(),
    _status_known('tenant_outbox'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_tenant_outbox_tenant_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tenant_outbox'))
    )
    op.create_index('ix_tenant_outbox_status_due_at', 'tenant_outbox', ['status', 'due_at'], unique=False)
    enable_tenant_rls(op, 'tenant_outbox')


def downgrade():
    disable_tenant_rls(op, 'tenant_outbox')
    op.drop_index('ix_tenant_outbox_status_due_at', table_name='tenant_outbox')
    op.drop_table('tenant_outbox')
    op.drop_index('ix_outbox_status_due_at', table_name='outbox')
    op.drop_table('outbox')
