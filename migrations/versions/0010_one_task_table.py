"""One record of background work: system checks join the tasks table; background_jobs goes.

``tasks`` stays a tenant table (row-level security applies, unchanged), and also holds the
system's own work, which belongs to no organization: ``tenant_id`` becomes nullable, so the
primary key is ``id`` alone. Rows of no organization pass the policy only unscoped (operator
and system code). The rows of ``background_jobs`` move into ``tasks`` as such rows; the
downgrade moves them back. Both copy while row-level security is off for the table.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.core.database import disable_tenant_rls, enable_tenant_rls

revision = '0010'
down_revision = '0009_outbox'

#: The columns both tables have, in the order the copies below use.
_SHARED = 'id, kind, description, status, progress, result, error, created_at, started_at, finished_at'


def upgrade():
    disable_tenant_rls(op, 'tasks')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_constraint('pk_tasks', type_='primary')
        batch_op.alter_column('tenant_id', existing_type=sa.Uuid(), nullable=True)
        batch_op.alter_column('kind', existing_type=sa.String(length=32), type_=sa.String(length=64),
                              existing_nullable=False)
        batch_op.create_primary_key('pk_tasks', ['id'])
        batch_op.create_index('ix_tasks_status_finished_at', ['status', 'finished_at'], unique=False)
    op.execute(
        f"INSERT INTO tasks (tenant_id, message, created_by_id, {_SHARED}) "
        f"SELECT NULL, '', NULL, {_SHARED} FROM background_jobs"
    )
    enable_tenant_rls(op, 'tasks')

    with op.batch_alter_table('background_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_background_jobs_status_created_at')
    op.drop_table('background_jobs')


def downgrade():
    op.create_table('background_jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'started', 'finished', 'failed')", name=op.f('ck_background_jobs_status_known')),
    sa.CheckConstraint('progress >= 0 AND progress <= 100', name=op.f('ck_background_jobs_progress_percent')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_background_jobs'))
    )
    with op.batch_alter_table('background_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_background_jobs_status_created_at', ['status', 'created_at'], unique=False)

    disable_tenant_rls(op, 'tasks')
    op.execute(f"INSERT INTO background_jobs ({_SHARED}) SELECT {_SHARED} FROM tasks WHERE tenant_id IS NULL")
    op.execute("DELETE FROM tasks WHERE tenant_id IS NULL")
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_status_finished_at')
        batch_op.drop_constraint('pk_tasks', type_='primary')
        batch_op.alter_column('kind', existing_type=sa.String(length=64), type_=sa.String(length=32),
                              existing_nullable=False)
        batch_op.alter_column('tenant_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.create_primary_key('pk_tasks', ['tenant_id', 'id'])
    enable_tenant_rls(op, 'tasks')
