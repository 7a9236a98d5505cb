"""Each project has its own workflow states: workflow_states, and issues.state refers to one.

A tenant table: tenant_id leads its keys, and PostgreSQL row-level security applies. Every
existing project gets the six states issues had until now, with the same keys (so their
issues, and addresses like ``?state=todo``, keep meaning the same), and in their categories:
backlog, todo (unstarted), in progress and in review (started), done (completed), cancelled.
``issues.state`` loses its fixed list (the CHECK ``state_known``) and gains a foreign key to
its project's states. ``closed_at`` now tells whether an issue is open: it is set on closed
issues that lack it and cleared on open ones.

On SQLite the foreign key needs ``issues`` rebuilt. That runs outside the migration's
transaction with foreign keys off (dropping the old table would otherwise cascade to its
comments, labels and history) and puts back the search triggers the rebuild drops.
"""
import uuid
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa

from app.core.database import disable_tenant_rls, enable_tenant_rls

revision = '0020'
down_revision = '0019'

# As app.models.workflow.DEFAULT_STATES at this revision.
DEFAULT_STATES = (
    ('backlog', 'Backlog', 'backlog'),
    ('todo', 'Todo', 'unstarted'),
    ('in_progress', 'In progress', 'started'),
    ('in_review', 'In review', 'started'),
    ('done', 'Done', 'completed'),
    ('cancelled', 'Cancelled', 'cancelled'),
)
STATE_FK = 'fk_issues_tenant_id_project_id_state_workflow_states'
OLD_CHECK = "state IN ('backlog', 'todo', 'in_progress', 'in_review', 'done', 'cancelled')"

_projects = sa.table('projects', sa.column('tenant_id', sa.Uuid()), sa.column('id', sa.Uuid()))
_states = sa.table(
    'workflow_states',
    *(sa.column(name, sa.Uuid()) for name in ('tenant_id', 'id', 'project_id')),
    *(sa.column(name, sa.String()) for name in ('key', 'name', 'category')),
    sa.column('position', sa.Integer()),
    sa.column('created_at', sa.DateTime(timezone=True)),
)


def _seed_states(bind):
    now = datetime.now(UTC)
    rows = [
        {
            'tenant_id': tenant_id,
            'id': uuid.uuid4(),
            'project_id': project_id,
            'key': key,
            'name': name,
            'category': category,
            'position': position,
            'created_at': now,
        }
        for tenant_id, project_id in bind.execute(sa.select(_projects.c.tenant_id, _projects.c.id)).all()
        for position, (key, name, category) in enumerate(DEFAULT_STATES)
    ]
    if rows:
        bind.execute(sa.insert(_states), rows)


def _rebuild_issues_on_sqlite(change, before=None):
    """Rebuild ``issues`` with ``change(batch_op)`` applied (after the statement ``before``) in a
    transaction of its own with foreign keys off, and make its triggers (the search's, 0004)
    again afterwards.

    Foreign keys can only be switched off outside a transaction, and the connection's begin
    hook (app/core/database.py) opens one even in autocommit mode: it is closed first. With
    them on, dropping the old table would delete every comment, label link and history entry
    of every issue (ON DELETE CASCADE)."""
    with op.get_context().autocommit_block():
        raw = op.get_bind().connection.dbapi_connection
        if raw.in_transaction:
            raw.execute('COMMIT')
        raw.execute('PRAGMA foreign_keys = OFF')
        try:
            if raw.execute('PRAGMA foreign_keys').fetchone()[0]:
                raise RuntimeError('foreign keys are still on: issues cannot be rebuilt safely')
            raw.execute('BEGIN IMMEDIATE')
            triggers = [
                sql for (sql,) in raw.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'issues'"
                ).fetchall()
            ]
            if before is not None:
                raw.execute(before)
            with op.batch_alter_table('issues', recreate='always') as batch_op:
                change(batch_op)
            for sql in triggers:
                raw.execute(sql)
            problems = raw.execute('PRAGMA foreign_key_check').fetchall()
            if problems:
                raise RuntimeError(f'foreign keys broken by the rebuild of issues: {problems[:5]}')
            raw.execute('COMMIT')
        except Exception:
            if raw.in_transaction:
                raw.execute('ROLLBACK')
            raise
        finally:
            raw.execute('PRAGMA foreign_keys = ON')


def _add_state_fk(batch_op):
    batch_op.drop_constraint(op.f('ck_issues_state_known'), type_='check')
    batch_op.create_foreign_key(
        STATE_FK,
        'workflow_states',
        ['tenant_id', 'project_id', 'state'],
        ['tenant_id', 'project_id', 'key'],
    )


def _drop_state_fk(batch_op):
    batch_op.drop_constraint(STATE_FK, type_='foreignkey')
    batch_op.create_check_constraint(op.f('ck_issues_state_known'), OLD_CHECK)


def upgrade():
    op.create_table('workflow_states',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("category IN ('backlog', 'unstarted', 'started', 'completed', 'cancelled')", name=op.f('ck_workflow_states_category_known')),
    sa.ForeignKeyConstraint(['tenant_id', 'project_id'], ['projects.tenant_id', 'projects.id'], name=op.f('fk_workflow_states_tenant_id_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_workflow_states_tenant_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_workflow_states')),
    sa.UniqueConstraint('tenant_id', 'project_id', 'key', name=op.f('uq_workflow_states_tenant_id_project_id_key'))
    )
    op.create_index('ix_workflow_states_project_position', 'workflow_states', ['tenant_id', 'project_id', 'position'], unique=False)
    enable_tenant_rls(op, 'workflow_states')
    bind = op.get_bind()
    _seed_states(bind)
    closed = sa.text("state IN ('done', 'cancelled')")
    op.execute(sa.text(f'UPDATE issues SET closed_at = updated_at WHERE closed_at IS NULL AND {closed}'))
    op.execute(sa.text(f'UPDATE issues SET closed_at = NULL WHERE closed_at IS NOT NULL AND NOT ({closed})'))
    if bind.dialect.name == 'sqlite':
        _rebuild_issues_on_sqlite(_add_state_fk)
    else:
        op.drop_constraint(op.f('ck_issues_state_known'), 'issues', type_='check')
        op.create_foreign_key(
            STATE_FK,
            'issues',
            'workflow_states',
            ['tenant_id', 'project_id', 'state'],
            ['tenant_id', 'project_id', 'key'],
        )


# Issues in states other than the six go back to the default state of their category.
TO_DEFAULT_STATES = (
    "UPDATE issues SET state = (SELECT CASE s.category WHEN 'backlog' THEN 'backlog' "
    "WHEN 'unstarted' THEN 'todo' WHEN 'started' THEN 'in_progress' WHEN 'completed' THEN 'done' "
    "ELSE 'cancelled' END FROM workflow_states s WHERE s.tenant_id = issues.tenant_id "
    "AND s.project_id = issues.project_id AND s.key = issues.state) "
    f"WHERE NOT ({OLD_CHECK})"
)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_issues_on_sqlite(_drop_state_fk, before=TO_DEFAULT_STATES)
    else:
        op.drop_constraint(STATE_FK, 'issues', type_='foreignkey')
        op.execute(sa.text(TO_DEFAULT_STATES))
        op.create_check_constraint(op.f('ck_issues_state_known'), 'issues', OLD_CHECK)
    disable_tenant_rls(op, 'workflow_states')
    op.drop_index('ix_workflow_states_project_position', table_name='workflow_states')
    op.drop_table('workflow_states')
