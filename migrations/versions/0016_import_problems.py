"""Import problems: every row of a CSV import that was rejected or imported with warnings.

A tenant table: tenant_id leads its key, and PostgreSQL row-level security applies. Rows go
with their task (ON DELETE CASCADE), so deleting old tasks deletes them too.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.core.database import disable_tenant_rls, enable_tenant_rls

revision = '0016'
down_revision = '0015'


def upgrade():
    # What a tenant table's foreign key to a task names: the task's organization and id. Tasks
    # are keyed by id alone (the system's own have no organization), so this unique index is
    # the key the foreign key refers to.
    op.create_index('ix_tasks_tenant_id_id', 'tasks', ['tenant_id', 'id'], unique=True)
    op.create_table('import_problems',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('task_id', sa.Uuid(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Boolean(), nullable=False),
    sa.Column('cells', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('problems', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'task_id'], ['tasks.tenant_id', 'tasks.id'], name=op.f('fk_import_problems_tenant_id_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_import_problems_tenant_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_import_problems'))
    )
    op.create_index('ix_import_problems_task_line', 'import_problems', ['tenant_id', 'task_id', 'line'], unique=True)
    enable_tenant_rls(op, 'import_problems')


def downgrade():
    disable_tenant_rls(op, 'import_problems')
    op.drop_index('ix_import_problems_task_line', table_name='import_problems')
    op.drop_table('import_problems')
    op.drop_index('ix_tasks_tenant_id_id', table_name='tasks')
