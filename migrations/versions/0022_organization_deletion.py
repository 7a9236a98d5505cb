"""Suspending an organization (``organizations.suspended_at`` and the operator's reason), and
deleting an organization, or an account, with a grace period: ``organizations.deletion_requested_at`` and
``deletion_due_at`` (set while an owner's request to delete it waits; the organization is
read-only meanwhile), and ``held_slugs``, the addresses of deleted organizations, which nobody
may take until ``held_until`` (links to the old pages must not reach a stranger's);
``users.deletion_due_at`` (a person's request to delete their account, waiting) and
``users.deleted_at`` (the account was deleted: what stays is a nameless "Deleted user" that
their issues and comments still point to).

Nullable columns without a foreign key are added in place on both databases (SQLite's
ALTER TABLE ADD COLUMN; no table rebuild), and the old code never names them (an expand step).
"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'


def upgrade():
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deletion_requested_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deletion_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('suspended_reason', sa.String(length=500), nullable=True))
    op.create_index('ix_organizations_deletion_due_at', 'organizations', ['deletion_due_at'])
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deletion_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_users_deletion_due_at', 'users', ['deletion_due_at'])
    op.create_table(
        'held_slugs',
        sa.Column('slug', sa.String(length=40), nullable=False),
        sa.Column('held_until', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('slug', name=op.f('pk_held_slugs')),
    )


def downgrade():
    op.drop_table('held_slugs')
    op.drop_index('ix_users_deletion_due_at', table_name='users')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('deletion_due_at')
    op.drop_index('ix_organizations_deletion_due_at', table_name='organizations')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('suspended_reason')
        batch_op.drop_column('suspended_at')
        batch_op.drop_column('deletion_due_at')
        batch_op.drop_column('deletion_requested_at')
