"""Projects and issues: labels, assignees, watchers, comments, activity, notifications, saved views.

Every table is a tenant table: tenant_id leads its keys, and PostgreSQL row-level security applies.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.core.database import disable_tenant_rls, enable_tenant_rls

TENANT_TABLES = (
    "projects",
    "labels",
    "issues",
    "issue_assignees",
    "issue_labels",
    "issue_watchers",
    "comments",
    "issue_activities",
    "notifications",
    "saved_views",
)
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'


def upgrade():
    op.create_table('labels',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('color', sa.String(length=7), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_labels_tenant_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_labels')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_labels_tenant_id_name'))
    )
    op.create_table('projects',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('issue_counter', sa.Integer(), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('issue_counter >= 0', name=op.f('ck_projects_issue_counter_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_projects_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_projects_tenant_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_projects')),
    sa.UniqueConstraint('tenant_id', 'key', name=op.f('uq_projects_tenant_id_key'))
    )
    op.create_table('issues',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('estimate', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Double(), nullable=False),
    sa.CheckConstraint("state IN ('backlog', 'todo', 'in_progress', 'in_review', 'done', 'cancelled')", name=op.f('ck_issues_state_known')),
    sa.CheckConstraint('estimate IS NULL OR estimate >= 0', name=op.f('ck_issues_estimate_positive')),
    sa.CheckConstraint('priority BETWEEN 0 AND 4', name=op.f('ck_issues_priority_range')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_issues_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id', 'project_id'], ['projects.tenant_id', 'projects.id'], name=op.f('fk_issues_tenant_id_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_issues_tenant_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_issues')),
    sa.UniqueConstraint('tenant_id', 'project_id', 'number', name=op.f('uq_issues_tenant_id_project_id_number'))
    )
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.create_index('ix_issues_tenant_id_project_id_state_rank', ['tenant_id', 'project_id', 'state', 'rank'], unique=False)
        batch_op.create_index('ix_issues_tenant_id_updated_at', ['tenant_id', 'updated_at'], unique=False)

    op.create_table('saved_views',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=True),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('filters', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'project_id'], ['projects.tenant_id', 'projects.id'], name=op.f('fk_saved_views_tenant_id_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_saved_views_tenant_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_saved_views_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_saved_views')),
    sa.UniqueConstraint('tenant_id', 'user_id', 'name', name=op.f('uq_saved_views_tenant_id_user_id_name'))
    )
    op.create_table('comments',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('issue_id', sa.Uuid(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_comments_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id', 'issue_id'], ['issues.tenant_id', 'issues.id'], name=op.f('fk_comments_tenant_id_issue_id_issues'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_comments_tenant_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_comments'))
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index('ix_comments_issue', ['tenant_id', 'issue_id', 'created_at'], unique=False)

    op.create_table('issue_activities',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('issue_id', sa.Uuid(), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('field', sa.String(length=32), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_issue_activities_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id', 'issue_id'], ['issues.tenant_id', 'issues.id'], name=op.f('fk_issue_activities_tenant_id_issue_id_issues'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_issue_activities_tenant_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_issue_activities'))
    )
    with op.batch_alter_table('issue_activities', schema=None) as batch_op:
        batch_op.create_index('ix_issue_activities_issue', ['tenant_id', 'issue_id', 'created_at'], unique=False)

    op.create_table('issue_assignees',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('issue_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'issue_id'], ['issues.tenant_id', 'issues.id'], name=op.f('fk_issue_assignees_tenant_id_issue_id_issues'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_issue_assignees_tenant_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_issue_assignees_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'issue_id', 'user_id', name=op.f('pk_issue_assignees'))
    )
    with op.batch_alter_table('issue_assignees', schema=None) as batch_op:
        batch_op.create_index('ix_issue_assignees_user_id', ['tenant_id', 'user_id'], unique=False)

    op.create_table('issue_labels',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('issue_id', sa.Uuid(), nullable=False),
    sa.Column('label_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'issue_id'], ['issues.tenant_id', 'issues.id'], name=op.f('fk_issue_labels_tenant_id_issue_id_issues'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'label_id'], ['labels.tenant_id', 'labels.id'], name=op.f('fk_issue_labels_tenant_id_label_id_labels'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_issue_labels_tenant_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'issue_id', 'label_id', name=op.f('pk_issue_labels'))
    )
    with op.batch_alter_table('issue_labels', schema=None) as batch_op:
        batch_op.create_index('ix_issue_labels_label_id', ['tenant_id', 'label_id'], unique=False)

    op.create_table('issue_watchers',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('issue_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'issue_id'], ['issues.tenant_id', 'issues.id'], name=op.f('fk_issue_watchers_tenant_id_issue_id_issues'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_issue_watchers_tenant_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_issue_watchers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'issue_id', 'user_id', name=op.f('pk_issue_watchers'))
    )
    op.create_table('notifications',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('issue_id', sa.Uuid(), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('excerpt', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('emailed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('assigned', 'mentioned', 'commented')", name=op.f('ck_notifications_kind_known')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_notifications_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id', 'issue_id'], ['issues.tenant_id', 'issues.id'], name=op.f('fk_notifications_tenant_id_issue_id_issues'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['organizations.id'], name=op.f('fk_notifications_tenant_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_user_unread', ['tenant_id', 'user_id', 'read_at', 'created_at'], unique=False)

    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)



def downgrade():
    for table in TENANT_TABLES:
        disable_tenant_rls(op, table)
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_unread')

    op.drop_table('notifications')
    op.drop_table('issue_watchers')
    with op.batch_alter_table('issue_labels', schema=None) as batch_op:
        batch_op.drop_index('ix_issue_labels_label_id')

    op.drop_table('issue_labels')
    with op.batch_alter_table('issue_assignees', schema=None) as batch_op:
        batch_op.drop_index('ix_issue_assignees_user_id')

    op.drop_table('issue_assignees')
    with op.batch_alter_table('issue_activities', schema=None) as batch_op:
        batch_op.drop_index('ix_issue_activities_issue')

    op.drop_table('issue_activities')
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_issue')

    op.drop_table('comments')
    op.drop_table('saved_views')
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.drop_index('ix_issues_tenant_id_updated_at')
        batch_op.drop_index('ix_issues_tenant_id_project_id_state_rank')

    op.drop_table('issues')
    op.drop_table('projects')
    op.drop_table('labels')
