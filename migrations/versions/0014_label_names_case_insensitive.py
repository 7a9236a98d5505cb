"""Label names are unique per organization whatever their case: "Bug" and "bug" are one label.

``labels.folded_name`` holds the name as names are compared (Unicode NFKC, case-folded), set by
the application with the name; a unique index on ``(tenant_id, folded_name)`` makes the
database refuse a second label of the same name, also when two people create it at once.
Labels that already differ only by case keep their rows (and their issues): the later ones are
renamed with a number, "bug (2)". The column and the index are added in place, without
rebuilding ``labels`` (on SQLite a rebuild would drop the table its issue links point to);
SQLite keeps the column's empty default, which the application never relies on.
"""
import unicodedata

from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'

_labels = sa.table(
    'labels',
    sa.column('tenant_id', sa.Uuid()),
    sa.column('id', sa.Uuid()),
    sa.column('name', sa.String()),
    sa.column('folded_name', sa.String()),
    sa.column('created_at', sa.DateTime(timezone=True)),
)


def _folded(name):
    # As app.models.labels.folded_label_name at this revision.
    return unicodedata.normalize('NFKC', name).casefold()


def _fill_folded_names(bind):
    rows = bind.execute(
        sa.select(_labels.c.tenant_id, _labels.c.id, _labels.c.name).order_by(
            _labels.c.tenant_id, _labels.c.created_at, _labels.c.id
        )
    ).all()
    taken = {(tenant_id, _folded(name)) for tenant_id, _id, name in rows}
    kept = set()
    for tenant_id, label_id, name in rows:
        new_name = name
        if (tenant_id, _folded(name)) in kept:
            number = 2
            while True:
                suffix = f' ({number})'
                new_name = name[: 50 - len(suffix)] + suffix
                if (tenant_id, _folded(new_name)) not in taken:
                    break
                number += 1
            taken.add((tenant_id, _folded(new_name)))
        kept.add((tenant_id, _folded(new_name)))
        bind.execute(
            sa.update(_labels)
            .where(_labels.c.tenant_id == tenant_id, _labels.c.id == label_id)
            .values(name=new_name, folded_name=_folded(new_name))
        )


def upgrade():
    op.add_column(
        'labels', sa.Column('folded_name', sa.String(length=200), nullable=False, server_default='')
    )
    bind = op.get_bind()
    _fill_folded_names(bind)
    if bind.dialect.name == 'postgresql':
        op.alter_column('labels', 'folded_name', server_default=None)
    op.create_index('ix_labels_folded_name', 'labels', ['tenant_id', 'folded_name'], unique=True)


def downgrade():
    op.drop_index('ix_labels_folded_name', table_name='labels')
    op.drop_column('labels', 'folded_name')
