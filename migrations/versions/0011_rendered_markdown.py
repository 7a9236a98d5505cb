"""Issue descriptions and comments keep their rendered HTML beside the Markdown.

``issues.description_html`` and ``comments.body_html`` hold the sanitized HTML the app renders
when the text is written, with the renderer version that made it
(``app.core.markdown.RENDERER_VERSION``). Existing rows are left NULL: the app renders those
when they are read, as it does for rows of an older renderer version, and
``flask markdown render`` stores them. Columns are added in place (no batch rebuild: on
SQLite that would drop the search triggers of 0004); the tables' row-level security policies
cover the new columns as they are.
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'


def upgrade():
    op.add_column('issues', sa.Column('description_html', sa.Text(), nullable=True))
    op.add_column('issues', sa.Column('description_html_version', sa.Integer(), nullable=True))
    op.add_column('comments', sa.Column('body_html', sa.Text(), nullable=True))
    op.add_column('comments', sa.Column('body_html_version', sa.Integer(), nullable=True))


def downgrade():
    op.drop_column('comments', 'body_html_version')
    op.drop_column('comments', 'body_html')
    op.drop_column('issues', 'description_html_version')
    op.drop_column('issues', 'description_html')
