"""Plans and feature flags: ``organizations.plan`` (the plan an operator put it on, see
``app/plans/catalog.py``) and ``feature_flags`` (how operators set each flag declared in
``app/flags/catalog.py``; a global table).

Organizations that exist before plans do are put on ``business``: they had no limits until now,
and a plan must not take away what they already use (an operator may move them to another
plan). The app always names the plan of a new organization (``DEFAULT_PLAN``); on PostgreSQL the
column's server default then becomes ``free``, the production setting, for rows inserted by the
old release during a rolling deploy. SQLite keeps ``business`` (changing a default there means
rebuilding the table, and the embedded default has no rolling deploys).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0027'
down_revision = '0026'


def upgrade():
    # Added in place (SQLite's ALTER TABLE ADD COLUMN: no rebuild of a table others refer to).
    op.add_column(
        'organizations', sa.Column('plan', sa.String(length=20), nullable=False, server_default='business')
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('organizations', 'plan', existing_type=sa.String(length=20), server_default='free')
    op.create_table(
        'feature_flags',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('percentage', sa.Integer(), server_default='0', nullable=False),
        sa.Column(
            'organization_ids',
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
            nullable=False,
        ),
        sa.Column('updated_by_id', sa.Uuid(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('off', 'on', 'listed', 'percentage')", name=op.f('ck_feature_flags_mode_known')),
        sa.CheckConstraint('percentage BETWEEN 0 AND 100', name=op.f('ck_feature_flags_percentage_range')),
        sa.ForeignKeyConstraint(
            ['updated_by_id'], ['users.id'], name=op.f('fk_feature_flags_updated_by_id_users'), ondelete='SET NULL'
        ),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_feature_flags')),
    )


def downgrade():
    op.drop_table('feature_flags')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('plan')
