"""Report snapshots: each organization's and project's latest computed reports.

A tenant table: tenant_id leads its key, and PostgreSQL row-level security applies.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.core.database import disable_tenant_rls, enable_tenant_rls

revision = '0007'
down_revision = '0006'


def upgrade():
    op.create_table('report_snapshots',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=True),
    sa.Column('data_version', sa.String(length=64), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'project_id'], ['projects.tenant_id', 'projects.id'], name=op.f('fk_report_snapshots_tenant_id_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_report_snapshots_tenant_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_report_snapshots')),
    sa.UniqueConstraint('tenant_id', 'scope', name=op.f('uq_report_snapshots_tenant_id_scope'))
    )
    enable_tenant_rls(op, 'report_snapshots')


def downgrade():
    disable_tenant_rls(op, 'report_snapshots')
    op.drop_table('report_snapshots')
