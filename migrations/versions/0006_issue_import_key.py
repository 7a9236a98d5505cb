"""CSV import: issues remember the import row they came from, so a re-run creates nothing twice.

``issues.import_key`` is a hash of the imported row's content (or of its ID column); it is unique
per tenant and project (NULL for issues created any other way). Both the column and the unique
index are added in place, without rebuilding ``issues``: on SQLite a batch rebuild would drop
the full-text search triggers of 0004.
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'


def upgrade():
    op.add_column('issues', sa.Column('import_key', sa.String(length=64), nullable=True))
    op.create_index('ix_issues_import_key', 'issues', ['tenant_id', 'project_id', 'import_key'], unique=True)


def downgrade():
    op.drop_index('ix_issues_import_key', table_name='issues')
    op.drop_column('issues', 'import_key')
